// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_numa_test: the NUMA policy of a guest_memfd's pages, which mbind() on
 * the VMM's mapping of the file sets, against whichever backend creates
 * guest_memfds.
 *
 * The policy belongs to the file: every mapping reads it back with
 * get_mempolicy(MPOL_F_ADDR), and it outlives the mapping that set it;
 * MPOL_DEFAULT removes it; invalid policies are refused and change nothing. Every folio the file
 * allocates follows it, for fallocate(), for the VMM's faults and for the
 * guest's faults, shared or private: each is placed on each node in turn,
 * so that the local node cannot pass for the policy. Pages the VMM can map
 * are checked one by one (get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)); private
 * pages by the node's unevictable memory, which is where guest_memfd pages
 * are counted.
 *
 * Needs two NUMA nodes with memory (make check's VM has them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>
#include <linux/mempolicy.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
/* Enough pages that per-CPU batches and other allocations are noise. */
#define NPAGES		2048
#define SIZE		(NPAGES * PAGE_SIZE)
#define TEST_GPA	BIT_ULL(32)
#define TEST_SLOT	10
#define KS		FALLOC_FL_KEEP_SIZE
#define PH		FALLOC_FL_PUNCH_HOLE
/* Bits of the node masks passed to the kernel: nodes 0-63. */
#define MAXNODE		65

static long sys_mbind(void *addr, size_t len, int mode, unsigned long mask, unsigned int flags)
{
	return syscall(SYS_mbind, addr, len, mode, &mask, MAXNODE, flags);
}

static long sys_get_mempolicy(int *mode, unsigned long *mask, void *addr, int flags)
{
	return syscall(SYS_get_mempolicy, mode, mask, mask ? MAXNODE : 0, addr, flags);
}

static char *map(int fd, size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	return p;
}

static void bind_to(char *p, size_t len, unsigned long nodes)
{
	TEST_ASSERT(!sys_mbind(p, len, MPOL_BIND, nodes, 0), "mbind: errno %d", errno);
}

/* The policy at @p, as get_mempolicy(MPOL_F_ADDR) reports it. */
static void policy_at(char *p, int *mode, unsigned long *nodes)
{
	*nodes = 0;
	TEST_ASSERT(!sys_get_mempolicy(mode, nodes, p, MPOL_F_ADDR),
		    "get_mempolicy: errno %d", errno);
}

/* The node of the page mapped at @p (faulting it in if need be). */
static int node_of(char *p)
{
	int node = -1;

	TEST_ASSERT(!sys_get_mempolicy(&node, NULL, p, MPOL_F_NODE | MPOL_F_ADDR),
		    "get_mempolicy(MPOL_F_NODE): errno %d", errno);
	return node;
}

/*
 * How many of the @npages pages mapped at @p are in the file, in use, and on
 * @node. In use first (mincore() reads the page cache, and counts uptodate
 * folios): node_of() would fault a missing page in, allocating it with the
 * policy under test. Pages fallocate() added are not in use until touched:
 * those are counted by their node's memory (grew_on()).
 */
static int pages_on(char *p, int npages, int node)
{
	unsigned char in_core[NPAGES];
	int i, n = 0;

	TEST_ASSERT(npages <= (int)sizeof(in_core), "%d pages", npages);
	TEST_ASSERT(!mincore(p, npages * PAGE_SIZE, in_core), "mincore: errno %d", errno);
	for (i = 0; i < npages; i++)
		n += (in_core[i] & 1) && node_of(p + i * PAGE_SIZE) == node;
	return n;
}

/* The node's Unevictable, in kB, after folding this CPU's LRU batch and counters. */
static long node_unevictable_kb(int node)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	gmem_fold_lru_and_counters();
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	f = fopen(path, "r");
	TEST_ASSERT(f, "%s: errno %d", path, errno);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Node %*d Unevictable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	TEST_ASSERT(kb >= 0, "no Unevictable in %s", path);
	return kb;
}

struct node_growth {
	long kb[2];
};

static void growth_begin(struct node_growth *g)
{
	g->kb[0] = node_unevictable_kb(0);
	g->kb[1] = node_unevictable_kb(1);
}

/* How much @node's unevictable memory grew since growth_begin(), in kB. */
static long grown_kb(struct node_growth *g, int node)
{
	return node_unevictable_kb(node) - g->kb[node];
}

/*
 * Whether the file's new pages, @size bytes since growth_begin(), went to
 * @node: at least 90% of them there, and under 10% on the other node.
 */
static bool grew_on(struct node_growth *g, int node, size_t size, char *why, size_t n)
{
	long want = size / 1024;
	long here = grown_kb(g, node);
	long there = grown_kb(g, !node);

	snprintf(why, n, "node %d grew %ld kB, node %d %ld kB, of %ld kB", node, here, !node,
		 there, want);
	return here >= want * 9 / 10 && there < want / 10;
}

static int online_nodes(void)
{
	char buf[64] = "";
	int a, b, n;
	FILE *f = fopen("/sys/devices/system/node/has_memory", "r");

	if (!f || !fgets(buf, sizeof(buf), f))
		return 0;
	fclose(f);
	n = sscanf(buf, "%d-%d", &a, &b);
	return n == 2 ? b - a + 1 : n == 1 ? 1 : 0;
}

/*
 * mbind() on one mapping sets the file's policy: another mapping reads it
 * back, pages outside the range keep the default, and it outlives the
 * mapping that set it.
 */
static void test_policy_belongs_to_file(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, 8 * PAGE_SIZE, MMAP | SHARED);
	char *a = map(fd, 8 * PAGE_SIZE), *b = map(fd, 8 * PAGE_SIZE);
	int mode_b, mode_out, mode_after;
	unsigned long nodes_b, nodes_out, nodes_after;
	bool ok;

	bind_to(a + 2 * PAGE_SIZE, 4 * PAGE_SIZE, BIT(1));
	policy_at(b + 3 * PAGE_SIZE, &mode_b, &nodes_b);
	policy_at(b + 7 * PAGE_SIZE, &mode_out, &nodes_out);
	munmap(a, 8 * PAGE_SIZE);
	policy_at(b + 5 * PAGE_SIZE, &mode_after, &nodes_after);
	ok = mode_b == MPOL_BIND && nodes_b == BIT(1) && mode_out == MPOL_DEFAULT &&
	     mode_after == MPOL_BIND && nodes_after == BIT(1);
	if (ok)
		ksft_test_result_pass("mbind sets the file's policy, read through every mapping\n");
	else
		ksft_test_result_fail("policy: 2nd map %d/%#lx, outside %d, after munmap %d/%#lx\n",
				      mode_b, nodes_b, mode_out, mode_after, nodes_after);
	munmap(b, 8 * PAGE_SIZE);
	close(fd);
}

/*
 * mbind(MPOL_DEFAULT) removes the file's policy: get_mempolicy() reads
 * MPOL_DEFAULT, and new pages follow the task's policy again (bound here to
 * the node the range was bound away from).
 */
static void test_policy_reset(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE);
	unsigned long nodes, node0 = BIT(0);
	struct node_growth g;
	char why[128];
	int mode;

	bind_to(p, SIZE, BIT(1));
	TEST_ASSERT(!sys_mbind(p, SIZE, MPOL_DEFAULT, 0, 0), "mbind(MPOL_DEFAULT): errno %d",
		    errno);
	policy_at(p + PAGE_SIZE, &mode, &nodes);
	TEST_ASSERT(!syscall(SYS_set_mempolicy, MPOL_BIND, &node0, MAXNODE),
		    "set_mempolicy: errno %d", errno);
	growth_begin(&g);
	TEST_ASSERT(!fallocate(fd, KS, 0, SIZE), "fallocate: errno %d", errno);
	TEST_ASSERT(!syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0), "set_mempolicy: errno %d",
		    errno);
	if (grew_on(&g, 0, SIZE, why, sizeof(why)) && mode == MPOL_DEFAULT)
		ksft_test_result_pass("mbind(MPOL_DEFAULT) removes the file's policy\n");
	else
		ksft_test_result_fail("policy reset: mode %d; task's node 0: %s\n", mode, why);
	munmap(p, SIZE);
	close(fd);
}

/* Invalid policies: EINVAL, and the policy already set stays. */
static void test_invalid_policy(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, PAGE_SIZE, MMAP | SHARED);
	char *p = map(fd, PAGE_SIZE);
	long bad_mode, no_nodes, offline_node;
	unsigned long nodes;
	int mode;

	bind_to(p, PAGE_SIZE, BIT(0));
	bad_mode = sys_mbind(p, PAGE_SIZE, MPOL_MAX + 7, BIT(0), 0) ? errno : 0;
	no_nodes = sys_mbind(p, PAGE_SIZE, MPOL_BIND, 0, 0) ? errno : 0;
	offline_node = sys_mbind(p, PAGE_SIZE, MPOL_BIND, BIT(63), 0) ? errno : 0;
	policy_at(p, &mode, &nodes);
	if (bad_mode == EINVAL && no_nodes == EINVAL && offline_node == EINVAL &&
	    mode == MPOL_BIND && nodes == BIT(0))
		ksft_test_result_pass("invalid policies: EINVAL, policy unchanged\n");
	else
		ksft_test_result_fail("invalid: mode %ld, no node %ld, offline %ld; now %d/%#lx\n",
				      bad_mode, no_nodes, offline_node, mode, nodes);
	munmap(p, PAGE_SIZE);
	close(fd);
}

/* fallocate() and the VMM's faults of a shared file, bound to @node. */
static void test_shared_placement(struct kvm_vm *vm, int node)
{
	int fd = vm_create_guest_memfd(vm, 2 * SIZE, MMAP | SHARED);
	char *p = map(fd, 2 * SIZE);
	struct node_growth g;
	char why[128];
	int faulted;
	size_t i;

	bind_to(p, 2 * SIZE, BIT(node));
	growth_begin(&g);
	TEST_ASSERT(!fallocate(fd, KS, 0, SIZE), "fallocate: errno %d", errno);
	if (grew_on(&g, node, SIZE, why, sizeof(why)))
		ksft_test_result_pass("node %d: fallocate follows the policy\n", node);
	else
		ksft_test_result_fail("node %d: fallocate: %s\n", node, why);
	for (i = SIZE; i < 2 * SIZE; i += PAGE_SIZE)
		p[i] = 1;
	faulted = pages_on(p + SIZE, NPAGES, node);
	if (faulted == NPAGES)
		ksft_test_result_pass("node %d: VMM faults follow the policy\n", node);
	else
		ksft_test_result_fail("node %d: VMM faults: %d of %d pages there\n", node, faulted,
				      NPAGES);
	munmap(p, 2 * SIZE);
	close(fd);
}

/* Interleaving over both nodes spreads a fallocate() over both. */
static void test_interleave(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE);
	long want = SIZE / 1024, on0, on1;
	struct node_growth g;

	TEST_ASSERT(!sys_mbind(p, SIZE, MPOL_INTERLEAVE, BIT(0) | BIT(1), 0),
		    "mbind(MPOL_INTERLEAVE): errno %d", errno);
	growth_begin(&g);
	TEST_ASSERT(!fallocate(fd, KS, 0, SIZE), "fallocate: errno %d", errno);
	on0 = grown_kb(&g, 0);
	on1 = grown_kb(&g, 1);
	if (on0 + on1 >= want * 9 / 10 && on0 >= want / 4 && on1 >= want / 4)
		ksft_test_result_pass("interleave: fallocate spreads over both nodes\n");
	else
		ksft_test_result_fail("interleave: node 0 grew %ld kB, node 1 %ld kB, of %ld kB\n",
				      on0, on1, want);
	munmap(p, SIZE);
	close(fd);
}

/* A software-protected VM's private file: fallocate() bound to @node. */
static void test_private_fallocate(int node)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP);
	char *p = map(fd, SIZE);
	struct node_growth g;
	char why[128];
	bool ok;

	bind_to(p, SIZE, BIT(node));
	growth_begin(&g);
	TEST_ASSERT(!fallocate(fd, KS, 0, SIZE), "fallocate: errno %d", errno);
	ok = grew_on(&g, node, SIZE, why, sizeof(why));
	if (ok)
		ksft_test_result_pass("node %d: private fallocate follows the policy\n", node);
	else
		ksft_test_result_fail("node %d: private fallocate: %s\n", node, why);
	munmap(p, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

static void guest_write_all(void)
{
	uint64_t i;

	for (i = 0; i < NPAGES; i++)
		WRITE_ONCE(*(uint64_t *)(TEST_GPA + i * PAGE_SIZE), i + 1);
	GUEST_DONE();
}

/*
 * A guest whose memslot is the file, bound to @node, writes every page: its
 * faults allocate them. Shared (a default VM, MMAP | INIT_SHARED) or private
 * (a software-protected VM, MMAP).
 */
static void test_guest_placement(bool private, int node)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = private ? KVM_X86_SW_PROTECTED_VM : KVM_X86_DEFAULT_VM,
	};
	struct kvm_vcpu *vcpu;
	/* Slot 0 grows by the page tables that map the test slot. */
	struct kvm_vm *vm = __vm_create_shape_with_one_vcpu(shape, &vcpu, 64, guest_write_all);
	int fd = vm_create_guest_memfd(vm, SIZE, private ? MMAP : MMAP | SHARED);
	char *p = map(fd, SIZE);
	const char *what = private ? "private" : "shared";
	struct node_growth g;
	char why[128] = "";
	bool ok = true;
	int i;

	bind_to(p, SIZE, BIT(node));
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, p, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	if (private)
		vm_mem_set_private(vm, TEST_GPA, SIZE);
	growth_begin(&g);
	gmem_run_to_done(vcpu);
	if (private) {
		ok = grew_on(&g, node, SIZE, why, sizeof(why));
	} else {
		for (i = 0; i < NPAGES; i++)
			ok &= *(uint64_t *)(p + i * PAGE_SIZE) == (uint64_t)i + 1;
		i = pages_on(p, NPAGES, node);
		snprintf(why, sizeof(why), "data seen %d, %d of %d pages there", ok, i, NPAGES);
		ok &= i == NPAGES;
	}
	if (ok)
		ksft_test_result_pass("node %d: %s guest faults follow the policy\n", node, what);
	else
		ksft_test_result_fail("node %d: %s guest faults: %s\n", node, what, why);
	munmap(p, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	struct kvm_vm *vm;
	int node, nodes = online_nodes();

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & MMAP);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	if (nodes < 2)
		ksft_exit_skip("needs two NUMA nodes with memory; this system has %d\n", nodes);
	gmem_pin_to_this_cpu();

	ksft_print_header();
	/* File policy, reset, invalid, interleave; 2 shared and 3 other placements per node. */
	ksft_set_plan(4 + 2 * 2 + 3 * 2);

	vm = vm_create_barebones();
	test_policy_belongs_to_file(vm);
	test_policy_reset(vm);
	test_invalid_policy(vm);
	for (node = 0; node < 2; node++)
		test_shared_placement(vm, node);
	test_interleave(vm);
	kvm_vm_free(vm);

	for (node = 0; node < 2; node++) {
		test_private_fallocate(node);
		test_guest_placement(false, node);
		test_guest_placement(true, node);
	}

	ksft_finished();
}
