// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_conversion_test: in-place conversion (kvm.gmem_in_place_conversion),
 * against whichever backend creates guest_memfds.
 *
 * With the parameter off (the default), the 6.12 model holds: the VM's
 * KVM_SET_MEMORY_ATTRIBUTES converts, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
 * is 0 and a guest_memfd refuses KVM_SET_MEMORY_ATTRIBUTES2 (ENOTTY).
 *
 * With it on (kernel command line), a guest_memfd of a VM with private
 * memory holds which of its pages are private, and KVM_SET_MEMORY_ATTRIBUTES2
 * on the file changes it without freeing or copying them; the VM's own
 * attributes stay shared. gmem_rs converts; the built-in C backend does not
 * (ENOTTY), and its pages stay private. The cases: the capabilities, the
 * errno of each bad call (changing nothing), the initial attribute, one page
 * of several, data kept across conversions, conversions of pages not yet
 * allocated, punch-hole keeping attributes, a forked child's mapping zapped,
 * an elevated reference (EAGAIN and error_offset, then success), SIGBUS on
 * private pages, populate's EEXIST once per page kept across conversions,
 * a guest and the VMM passing data through one file (KVM's
 * mapping zapped at each conversion), vCPUs touching their pages while
 * VMM threads convert them, and gmem_rs's 2 MiB folios mapped 2 MiB (by
 * KVM, and by the VMM with one PMD) only while all of the block has one
 * attribute.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define HUGE		GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD
#define HPAGE		(2ul << 20)
#define NPAGES		4
#define SIZE		(NPAGES * PAGE_SIZE)
#define TEST_GPA	0xc0000000ul
#define TEST_SLOT	10

static int probe_dev;

static long ret(long r)
{
	return r < 0 ? -errno : r;
}

static void to_private(int fd, uint64_t off, uint64_t size)
{
	int r = gmem_set_attributes(fd, off, size, PRIVATE, NULL);

	TEST_ASSERT(!r, "to private [%#lx, +%#lx): %d", off, size, r);
}

static void to_shared(int fd, uint64_t off, uint64_t size)
{
	int r = gmem_set_attributes(fd, off, size, 0, NULL);

	TEST_ASSERT(!r, "to shared [%#lx, +%#lx): %d", off, size, r);
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

/* The first word at @p, or -1 if reading it raises SIGBUS (a private page). */
static int64_t peek(uint64_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int64_t v = -1;

	sigaction(SIGBUS, &sa, &old);
	if (!sigsetjmp(bus_jmp, 1))
		v = (int64_t)(READ_ONCE(*p) & INT64_MAX);
	sigaction(SIGBUS, &old, NULL);
	return v;
}

/* Which of the mapping's NPAGES pages the host can read: bit i for page i. */
static unsigned int readable(char *p)
{
	unsigned int mask = 0;
	int i;

	for (i = 0; i < NPAGES; i++)
		mask |= (peek((uint64_t *)(p + i * PAGE_SIZE)) >= 0) << i;
	return mask;
}

static char *map(int fd)
{
	char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	return p;
}

/* The parameter off: 6.12's model, and the file's ioctl refused. */
static void test_off(void)
{
	struct kvm_vm *pvm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int fd = vm_create_guest_memfd(pvm, SIZE, 0);
	uint64_t cap = vm_check_cap(pvm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	uint64_t vm_cap = vm_check_cap(pvm, KVM_CAP_MEMORY_ATTRIBUTES);
	int r = gmem_set_attributes(fd, 0, PAGE_SIZE, PRIVATE, NULL);
	struct kvm_memory_attributes va = { .size = PAGE_SIZE, .attributes = PRIVATE };
	int vm_r = ret(ioctl(pvm->fd, KVM_SET_MEMORY_ATTRIBUTES, &va));

	if (r == -ENOTTY && !cap && vm_cap == PRIVATE && !vm_r)
		ksft_test_result_pass("off: the file refuses (ENOTTY); the VM converts\n");
	else
		ksft_test_result_fail("off: ioctl %d, cap %#lx, VM cap %#lx, VM ioctl %d\n",
				      r, cap, vm_cap, vm_r);
	close(fd);
	kvm_vm_free(pvm);
}

/* On: the capabilities, and the VM's attributes stay shared. */
static void test_caps(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	struct kvm_vm *pvm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	uint64_t cap = vm_check_cap(pvm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	uint64_t cap_default = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	uint64_t cap_sys = kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	uint64_t vm_cap = vm_check_cap(pvm, KVM_CAP_MEMORY_ATTRIBUTES);
	struct kvm_memory_attributes va = { .size = PAGE_SIZE, .attributes = PRIVATE };
	int vm_private = ret(ioctl(pvm->fd, KVM_SET_MEMORY_ATTRIBUTES, &va)), vm_shared;

	va.attributes = 0;
	vm_shared = ret(ioctl(pvm->fd, KVM_SET_MEMORY_ATTRIBUTES, &va));
	if (cap == PRIVATE && !cap_default && cap_sys == PRIVATE && !vm_cap &&
	    vm_private == -EINVAL && !vm_shared)
		ksft_test_result_pass("on: capabilities; the VM's attributes stay shared\n");
	else
		ksft_test_result_fail("on: cap %#lx/%#lx/%#lx, VM cap %#lx, VM ioctl %d %d\n",
				      cap, cap_default, cap_sys, vm_cap, vm_private, vm_shared);
	kvm_vm_free(pvm);
	kvm_vm_free(vm);
}

/* The built-in backend does not convert: ENOTTY, and its pages stay private. */
static void test_c_backend(struct kvm_vm *pvm)
{
	int fd = vm_create_guest_memfd(pvm, SIZE, 0);
	int r = gmem_set_attributes(fd, 0, PAGE_SIZE, 0, NULL);

	if (r == -ENOTTY)
		ksft_test_result_pass("C backend: KVM_SET_MEMORY_ATTRIBUTES2 is ENOTTY\n");
	else
		ksft_test_result_fail("C backend: %d, want ENOTTY\n", r);
	close(fd);
}

/* The errno of each bad call; none changed an attribute. */
static void test_errno(struct kvm_vm *pvm)
{
	struct kvm_vm *vm = vm_create_barebones();
	int fd = vm_create_guest_memfd(pvm, SIZE, MMAP);
	int dfd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	struct kvm_memory_attributes2 a;
	char *p = map(fd);
	struct {
		const char *what;
		uint64_t off, size, attrs, flags, reserved0, reserved10;
		int fd, want;
	} rows[] = {
		{ "flags", 0, PAGE_SIZE, 0, 1, 0, 0, fd, -EINVAL },
		{ "reserved[0]", 0, PAGE_SIZE, 0, 0, 1, 0, fd, -EINVAL },
		{ "reserved[10]", 0, PAGE_SIZE, 0, 0, 0, 1, fd, -EINVAL },
		{ "unknown attribute", 0, PAGE_SIZE, 1, 0, 0, 0, fd, -EINVAL },
		{ "PRIVATE and more", 0, PAGE_SIZE, PRIVATE | 16, 0, 0, 0, fd, -EINVAL },
		{ "size 0", 0, 0, 0, 0, 0, 0, fd, -EINVAL },
		{ "unaligned offset", 1, PAGE_SIZE, 0, 0, 0, 0, fd, -EINVAL },
		{ "unaligned size", 0, 100, 0, 0, 0, 0, fd, -EINVAL },
		{ "overflow", -PAGE_SIZE, 2 * PAGE_SIZE, 0, 0, 0, 0, fd, -EINVAL },
		{ "past the end", SIZE, PAGE_SIZE, 0, 0, 0, 0, fd, -EINVAL },
		{ "across the end", SIZE - PAGE_SIZE, 2 * PAGE_SIZE, 0, 0, 0, 0, fd, -EINVAL },
		{ "VM without private memory", 0, PAGE_SIZE, PRIVATE, 0, 0, 0, dfd, -EINVAL },
	};
	int i, wrong = 0, efault, enotty;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		int r;

		memset(&a, 0, sizeof(a));
		a.offset = rows[i].off;
		a.size = rows[i].size;
		a.attributes = rows[i].attrs;
		a.flags = rows[i].flags;
		a.reserved[0] = rows[i].reserved0;
		a.reserved[10] = rows[i].reserved10;
		r = ret(ioctl(rows[i].fd, KVM_SET_MEMORY_ATTRIBUTES2, &a));
		if (r == rows[i].want)
			continue;
		ksft_print_msg("%s: %d, want %d\n", rows[i].what, r, rows[i].want);
		wrong++;
	}
	efault = ret(ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, (void *)8));
	enotty = ret(ioctl(fd, _IOWR(KVMIO, 0xd3, struct kvm_memory_attributes2), &a));
	if (!wrong && efault == -EFAULT && enotty == -ENOTTY && readable(p) == 0)
		ksft_test_result_pass("errno of %zu calls; every page still private\n",
				      ARRAY_SIZE(rows) + 2);
	else
		ksft_test_result_fail("%d rows wrong; bad pointer %d, other command %d; %#x\n",
				      wrong, efault, enotty, readable(p));
	munmap(p, SIZE);
	close(dfd);
	close(fd);
	kvm_vm_free(vm);
}

/*
 * The initial attribute, one page of several, data kept both ways, and
 * pages converted before they are allocated.
 */
static void test_attributes(struct kvm_vm *pvm)
{
	int pfd = vm_create_guest_memfd(pvm, SIZE, MMAP);
	int sfd = vm_create_guest_memfd(pvm, SIZE, MMAP | SHARED);
	char *pp = map(pfd), *sp = map(sfd);
	unsigned int init_p = readable(pp), init_s = readable(sp), one, back;
	uint64_t *w = (uint64_t *)(sp + 2 * PAGE_SIZE);
	int64_t kept, zero;
	int unallocated;

	/* Converting pages no one allocated allocates nothing. */
	to_shared(pfd, 0, SIZE);
	to_private(pfd, PAGE_SIZE, PAGE_SIZE);
	unallocated = gmem_probe(probe_dev, pfd, 0, NULL) == -ENOENT &&
		      gmem_probe(probe_dev, pfd, PAGE_SIZE, NULL) == -ENOENT;
	zero = peek((uint64_t *)pp);

	*w = 0x5a5a1234;
	to_private(sfd, 2 * PAGE_SIZE, PAGE_SIZE);
	one = readable(sp);
	to_shared(sfd, 2 * PAGE_SIZE, PAGE_SIZE);
	back = readable(sp);
	kept = peek(w);
	if (init_p == 0 && init_s == 0xf && one == 0xb && back == 0xf && kept == 0x5a5a1234 &&
	    unallocated && zero == 0 && readable(pp) == 0xd)
		ksft_test_result_pass("initial attributes; one page of four; data kept\n");
	else
		ksft_test_result_fail("init %#x %#x; %#x %#x; kept %#lx; new %d, %ld, %#x\n",
				      init_p, init_s, one, back, kept, unallocated, zero,
				      readable(pp));
	munmap(pp, SIZE);
	munmap(sp, SIZE);
	close(pfd);
	close(sfd);
}

/* Punch-hole frees the pages and keeps their attributes. */
static void test_punch(struct kvm_vm *pvm)
{
	int fd = vm_create_guest_memfd(pvm, SIZE, MMAP | SHARED);
	char *p = map(fd);
	int r, gone;

	memset(p, 0x11, SIZE);
	to_private(fd, 0, PAGE_SIZE);
	r = ret(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * PAGE_SIZE));
	gone = gmem_probe(probe_dev, fd, 0, NULL) == -ENOENT &&
	       gmem_probe(probe_dev, fd, PAGE_SIZE, NULL) == -ENOENT;
	if (!r && gone && readable(p) == 0xe && peek((uint64_t *)(p + PAGE_SIZE)) == 0 &&
	    peek((uint64_t *)(p + 2 * PAGE_SIZE)) == 0x1111111111111111ll)
		ksft_test_result_pass("punch-hole keeps attributes\n");
	else
		ksft_test_result_fail("punch %d, freed %d, readable %#x\n", r, gone, readable(p));
	munmap(p, SIZE);
	close(fd);
}

/* kvm_gmem_populate() of @n pages from page @first of TEST_GPA, from @src: a count or -errno. */
static long populate(struct kvm_vm *vm, uint64_t first, int64_t n, void *src)
{
	struct gmem_populate_test_args args = {
		.vm_fd = vm->fd,
		.gfn = (TEST_GPA >> PAGE_SHIFT) + first,
		.src = (uint64_t)src,
		.npages = n,
	};

	long r = ioctl(probe_dev, GMEM_POPULATE_TEST, &args);

	return r < 0 ? -errno : r;
}

/*
 * Populate reads the file's attributes and fills a private page once: EEXIST
 * for it after, also after a round trip through shared (nothing is freed),
 * until a punch frees it; EINVAL for a shared page. The data is what it
 * copied, from a buffer and from a shared page of the same file (which the
 * VMM's fault serves under the invalidate_lock populate takes: populate
 * faults its source in first).
 */
static void test_populate(void)
{
	static uint64_t src[2 * PAGE_SIZE / 8] __aligned(4096);
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP);
	char *p = map(fd);
	long first, again, on_shared, after_round, after_punch;
	bool data, own;

	for (uint64_t i = 0; i < ARRAY_SIZE(src); i++)
		src[i] = 0x5eed000000000000ull + i;
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, p, fd, 0);
	to_shared(fd, 3 * PAGE_SIZE, PAGE_SIZE);
	first = populate(vm, 0, 2, src);
	again = populate(vm, 1, 1, src);
	to_shared(fd, 2 * PAGE_SIZE, PAGE_SIZE);
	on_shared = populate(vm, 2, 1, src);
	to_shared(fd, 0, 2 * PAGE_SIZE);
	data = !memcmp(p, src, sizeof(src));
	to_private(fd, 0, 2 * PAGE_SIZE);
	after_round = populate(vm, 0, 1, src);
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE_SIZE),
		    "punch: errno %d", errno);
	/* The source unmapped: populate's fault-in maps it again. */
	memset(p + 3 * PAGE_SIZE, 0x77, PAGE_SIZE);
	TEST_ASSERT(!madvise(p + 3 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED), "madvise: %d", errno);
	after_punch = populate(vm, 0, 1, p + 3 * PAGE_SIZE);
	to_shared(fd, 0, PAGE_SIZE);
	own = peek((uint64_t *)p) == 0x7777777777777777ll &&
	      !memcmp(p, p + 3 * PAGE_SIZE, PAGE_SIZE);
	if (first == 2 && again == -EEXIST && on_shared == -EINVAL && data &&
	    after_round == -EEXIST && after_punch == 1 && own)
		ksft_test_result_pass("populate: once per private page, %s\n",
				      "EEXIST after a round trip, EINVAL on a shared page");
	else
		ksft_test_result_fail("populate %ld %ld %ld, data %d, %ld, punch %ld, own %d\n",
				      first, again, on_shared, data, after_round, after_punch, own);
	kvm_vm_free(vm);
	munmap(p, SIZE);
	close(fd);
}

/* A forked child's mapping is zapped too: it gets SIGBUS after the conversion. */
static void test_fork(struct kvm_vm *pvm)
{
	int fd = vm_create_guest_memfd(pvm, SIZE, MMAP | SHARED);
	char *p = map(fd);
	int to_child[2], to_parent[2], status = 0, r;
	char c = 0;
	pid_t pid;

	TEST_ASSERT(!pipe(to_child) && !pipe(to_parent), "pipe");
	*(uint64_t *)p = 7;
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid) {
		int before = peek((uint64_t *)p) == 7, after;

		ssize_t n = write(to_parent[1], "r", 1) + read(to_child[0], &c, 1);

		after = peek((uint64_t *)p) == -1;
		if (n != 2)
			_exit(2);
		_exit(before && after ? 0 : 1);
	}
	TEST_ASSERT(read(to_parent[0], &c, 1) == 1, "child");
	r = gmem_set_attributes(fd, 0, PAGE_SIZE, PRIVATE, NULL);
	TEST_ASSERT(write(to_child[1], "c", 1) == 1, "to the child");
	waitpid(pid, &status, 0);
	if (!r && WIFEXITED(status) && !WEXITSTATUS(status))
		ksft_test_result_pass("a forked child's mapping is zapped on conversion\n");
	else
		ksft_test_result_fail("convert %d, child status %#x\n", r, status);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	munmap(p, SIZE);
	close(fd);
}

/*
 * A page someone holds a reference on cannot become private: EAGAIN, its
 * offset in error_offset, nothing converted; once dropped, the call works.
 * The test module holds the reference a fault holds between getting the pfn
 * and mapping it.
 */
static void test_reference(struct kvm_vm *pvm)
{
	int fd = vm_create_guest_memfd(pvm, SIZE, MMAP | SHARED);
	struct gmem_hold_test_args hold = {
		.vm_fd = pvm->fd, .gfn = (TEST_GPA >> PAGE_SHIFT) + 2,
	};
	char *p = map(fd);
	uint64_t err = 0;
	unsigned int during;
	int held, r, again;

	vm_set_user_memory_region2(pvm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, p, fd, 0);
	memset(p, 0x22, SIZE);
	held = ret(ioctl(probe_dev, GMEM_HOLD_TEST, &hold));
	r = gmem_set_attributes(fd, 0, SIZE, PRIVATE, &err);
	during = readable(p);
	ioctl(probe_dev, GMEM_RELEASE_TEST);
	again = gmem_set_attributes(fd, 0, SIZE, PRIVATE, NULL);
	if (!held && r == -EAGAIN && err == 2 * PAGE_SIZE && during == 0xf && !again &&
	    readable(p) == 0)
		ksft_test_result_pass("an elevated reference: EAGAIN at its page, then success\n");
	else
		ksft_test_result_fail("hold %d; convert %d at %#lx, readable %#x; again %d\n",
				      held, r, err, during, again);
	vm_set_user_memory_region2(pvm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, 0, p, fd, 0);
	munmap(p, SIZE);
	close(fd);
}

static void guest_code(uint64_t *mem)
{
	GUEST_ASSERT_EQ(READ_ONCE(*mem), 0x1111);	/* the VMM's, shared */
	WRITE_ONCE(*mem, 0x2222);
	GUEST_SYNC(1);
	GUEST_ASSERT_EQ(READ_ONCE(*mem), 0x2222);	/* private now, the same page */
	WRITE_ONCE(*mem, 0x3333);
	GUEST_SYNC(2);
	GUEST_ASSERT_EQ(READ_ONCE(*mem), 0x4444);	/* the VMM's again */
	GUEST_DONE();
}

static const struct vm_shape sw_protected = {
	.mode = VM_MODE_DEFAULT,
	.type = KVM_X86_SW_PROTECTED_VM,
};

/*
 * A guest and the VMM pass data through one file, across conversions. The
 * page is the same either way, so a mapping KVM failed to zap would read
 * the same: each conversion must also drop KVM's 4 KiB mapping of it.
 */
static void test_guest(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(sw_protected, &vcpu, guest_code);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	uint64_t *p = (uint64_t *)map(fd), m4, zap_private, zap_shared;
	int64_t while_private, seen;

	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, p, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	vcpu_args_set(vcpu, 1, TEST_GPA);
	*p = 0x1111;
	gmem_run_to_sync(vcpu, 1);
	m4 = vm_get_stat(vm, "pages_4k");
	to_private(fd, 0, PAGE_SIZE);
	zap_private = m4 - vm_get_stat(vm, "pages_4k");
	while_private = peek(p);
	gmem_run_to_sync(vcpu, 2);
	m4 = vm_get_stat(vm, "pages_4k");
	to_shared(fd, 0, PAGE_SIZE);
	zap_shared = m4 - vm_get_stat(vm, "pages_4k");
	seen = peek(p);
	*p = 0x4444;
	gmem_run_to_done(vcpu);
	if (while_private == -1 && seen == 0x3333 && zap_private == 1 && zap_shared == 1)
		ksft_test_result_pass("the guest and the VMM share data across conversions\n");
	else
		ksft_test_result_fail("host read %ld while private, %#lx after; zapped %lu, %lu\n",
				      while_private, seen, zap_private, zap_shared);
	munmap(p, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

static void guest_touch(uint64_t gpa, uint64_t npages)
{
	for (;;) {
		for (uint64_t i = 0; i < npages; i++)
			WRITE_ONCE(*(uint64_t *)(gpa + i * PAGE_SIZE), i);
		GUEST_SYNC(0);
	}
}

/*
 * The guest touches every page of the 2 MiB block: how many more 2 MiB and
 * 4 KiB mappings KVM has than at the last call (@last: 2M, 4K counts).
 */
static void touch_block(struct kvm_vcpu *vcpu, int64_t last[2], int64_t *d2, int64_t *d4)
{
	int64_t n2, n4;

	gmem_run_to_sync(vcpu, 0);
	n2 = vm_get_stat(vcpu->vm, "pages_2m");
	n4 = vm_get_stat(vcpu->vm, "pages_4k");
	*d2 = n2 - last[0];
	*d4 = n4 - last[1];
	last[0] = n2;
	last[1] = n4;
}

/*
 * gmem_rs's 2 MiB folios: KVM maps a block 2 MiB only while all of it has
 * one attribute. With one page shared (a file without MMAP: KVM maps that
 * page from the slot's userspace memory), the rest of the block is mapped
 * 4 KiB; private again, 2 MiB again; all of it shared, 2 MiB of the VMM's
 * transparent huge page.
 */
static void test_huge(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(sw_protected, &vcpu, guest_touch);
	int fd = vm_create_guest_memfd(vm, HPAGE, HUGE);
	char *mem = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	char *shared = (char *)(((uintptr_t)mem + HPAGE - 1) & ~(HPAGE - 1));
	int64_t huge2, huge4, mixed2, mixed4, again2, again4, shared2, shared4, last[2];
	long anon_kb;

	TEST_ASSERT(mem != MAP_FAILED, "mmap: errno %d", errno);
	TEST_ASSERT(!madvise(shared, HPAGE, MADV_HUGEPAGE), "madvise: errno %d", errno);
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, HPAGE, shared,
				   fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, HPAGE / PAGE_SIZE);
	vcpu_args_set(vcpu, 2, TEST_GPA, HPAGE / PAGE_SIZE);
	last[0] = vm_get_stat(vm, "pages_2m");
	last[1] = vm_get_stat(vm, "pages_4k");
	touch_block(vcpu, last, &huge2, &huge4);
	to_shared(fd, 5 * PAGE_SIZE, PAGE_SIZE);
	touch_block(vcpu, last, &mixed2, &mixed4);
	to_private(fd, 5 * PAGE_SIZE, PAGE_SIZE);
	touch_block(vcpu, last, &again2, &again4);
	/* The 2 MiB private mapping gives way to a 2 MiB shared one. */
	to_shared(fd, 0, HPAGE);
	touch_block(vcpu, last, &shared2, &shared4);
	/* The premise: the VMM's memory there is one transparent huge page. */
	anon_kb = gmem_smaps_kb(shared, "AnonHugePages");
	/* The guest's code, stack and page tables may add a few 4 KiB mappings. */
	if (huge2 == 1 && huge4 < 16 && mixed2 == -1 && mixed4 == 512 && again2 == 1 &&
	    again4 == -512 && anon_kb == 2048 && shared2 == 0 && shared4 == 0 &&
	    ((uint64_t *)shared)[5 * PAGE_SIZE / 8] == 5 &&
	    ((uint64_t *)shared)[7 * PAGE_SIZE / 8] == 7)
		ksft_test_result_pass("2 MiB folios: mapped 2 MiB only while of one attribute\n");
	else
		ksft_test_result_fail("2M/4K: %ld/%ld %ld/%ld %ld/%ld %ld/%ld, AnonHuge %ld kB\n",
				      huge2, huge4, mixed2, mixed4, again2, again4, shared2,
				      shared4, anon_kb);
	kvm_vm_free(vm);
	munmap(mem, 2 * HPAGE);
	close(fd);
}

#define NR_VCPUS	2
#define VCPU_PAGES	4
#define ROUNDS		64
#define HOST_BIT	BIT_ULL(62)

static uint64_t value(uint64_t id, uint64_t round, uint64_t page, uint64_t host)
{
	return host | id << 40 | round << 8 | page;
}

/*
 * Each vCPU's pages: it checks what the VMM wrote, writes its own values
 * and tells the VMM, which converts them to shared, checks and writes
 * them, and converts them back to private, while the other vCPU runs.
 */
static void guest_convert(uint64_t gpa, uint64_t id)
{
	for (uint64_t r = 0; r < ROUNDS; r++) {
		for (uint64_t i = 0; i < VCPU_PAGES; i++) {
			uint64_t *w = (uint64_t *)(gpa + i * PAGE_SIZE);

			if (r)
				GUEST_ASSERT_EQ(READ_ONCE(*w), value(id, r - 1, i, HOST_BIT));
			WRITE_ONCE(*w, value(id, r, i, 0));
		}
		GUEST_SYNC(r);
	}
	GUEST_DONE();
}

struct converter {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	int fd, id, bad;
	uint64_t *mem;
	/* Rounds done; the thread is gone once @done is set. */
	uint64_t rounds;
	int done, stop, stopped, shutdown;
	struct kvm_regs regs;
};

/*
 * KVM_RUN to the next exit, which must be GUEST_SYNC(@stage), or GUEST_DONE()
 * past the last round. False if the run ended otherwise: the VMM stopped a
 * vCPU that made no progress (its registers read), or KVM reported SHUTDOWN.
 */
static bool converter_run(struct converter *c, uint64_t stage)
{
	/* Not vcpu_run(): the watchdog's signal must get the thread out of KVM_RUN. */
	while (__vcpu_run(c->vcpu)) {
		TEST_ASSERT(errno == EINTR, KVM_IOCTL_ERROR(KVM_RUN, -errno));
		if (READ_ONCE(c->stop)) {
			vcpu_regs_get(c->vcpu, &c->regs);
			c->stopped = 1;
			return false;
		}
	}
	if (c->vcpu->run->exit_reason == KVM_EXIT_SHUTDOWN) {
		c->shutdown = 1;
		return false;
	}
	if (stage == ROUNDS)
		gmem_expect_done(c->vcpu);
	else
		gmem_expect_sync(c->vcpu, stage);
	return true;
}

static void *convert_loop(void *arg)
{
	struct converter *c = arg;
	uint64_t off = c->id * VCPU_PAGES * PAGE_SIZE, len = VCPU_PAGES * PAGE_SIZE;

	for (uint64_t r = 0; r < ROUNDS; r++) {
		if (!converter_run(c, r))
			goto out;
		to_shared(c->fd, off, len);
		for (uint64_t i = 0; i < VCPU_PAGES; i++) {
			uint64_t *w = c->mem + (off + i * PAGE_SIZE) / 8;

			c->bad += READ_ONCE(*w) != value(c->id, r, i, 0);
			WRITE_ONCE(*w, value(c->id, r, i, HOST_BIT));
		}
		to_private(c->fd, off, len);
		WRITE_ONCE(c->rounds, r + 1);
	}
	converter_run(c, ROUNDS);
out:
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

#define STALL_MS	30000

/*
 * Waits for the converters. One that makes no progress for STALL_MS is
 * signalled out of KVM_RUN and its registers read. Returns false if a vCPU
 * showed QEMU TCG's nested SVM bug (FACTS.md: L1's state in the L2 vCPU, a
 * rip in L1's kernel or a SHUTDOWN); any other stall fails the test.
 */
static bool wait_converters(struct converter *c)
{
	uint64_t seen[NR_VCPUS] = {}, idle_ms = 0;
	bool emulator = false;
	int i, k, done;

	do {
		usleep(100000);
		idle_ms += 100;
		for (i = 0, done = 0; i < NR_VCPUS; i++) {
			done += __atomic_load_n(&c[i].done, __ATOMIC_ACQUIRE);
			if (READ_ONCE(c[i].rounds) != seen[i]) {
				seen[i] = READ_ONCE(c[i].rounds);
				idle_ms = 0;
			}
		}
	} while (done < NR_VCPUS && idle_ms < STALL_MS);

	for (i = 0; i < NR_VCPUS; i++) {
		if (!__atomic_load_n(&c[i].done, __ATOMIC_ACQUIRE)) {
			WRITE_ONCE(c[i].stop, 1);
			for (k = 0; k < 100 && !__atomic_load_n(&c[i].done, __ATOMIC_ACQUIRE);
			     k++) {
				pthread_kill(c[i].thread, SIGUSR1);
				usleep(50000);
			}
			TEST_ASSERT(__atomic_load_n(&c[i].done, __ATOMIC_ACQUIRE),
				    "vCPU %d made no progress and does not leave KVM_RUN", i);
			/* Its registers, unless it left otherwise once kicked (below). */
			if (c[i].stopped) {
				printf("# vCPU %d stalled in round %lu: rip 0x%llx\n", i,
				       c[i].rounds, c[i].regs.rip);
				TEST_ASSERT(gmem_rip_in_l1_kernel(c[i].regs.rip),
					    "vCPU %d stalled with rip 0x%llx: not QEMU's nested SVM bug",
					    i, c[i].regs.rip);
				emulator = true;
			}
		}
		pthread_join(c[i].thread, NULL);
		if (c[i].shutdown) {
			printf("# vCPU %d: SHUTDOWN in round %lu\n", i, c[i].rounds);
			emulator = true;
		}
	}
	return !emulator;
}

/*
 * Upstream's private_mem_conversions_test shape, in place: vCPUs touch their
 * pages while their VMM threads convert them, one file for all. An attempt
 * that QEMU's nested SVM bug spoils is retried, at most twice.
 */
static void test_concurrent(void)
{
	uint64_t size = NR_VCPUS * VCPU_PAGES * PAGE_SIZE;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct converter c[NR_VCPUS];
	int i, bad, attempt;
	bool clean = false;

	gmem_catch_kick();
	for (attempt = 1; !clean && attempt <= 3; attempt++) {
		struct kvm_vm *vm = __vm_create_with_vcpus(sw_protected, NR_VCPUS, 0,
							   guest_convert, vcpus);
		int fd = vm_create_guest_memfd(vm, size, MMAP);
		uint64_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		TEST_ASSERT(mem != MAP_FAILED, "mmap: errno %d", errno);
		vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, size,
					   mem, fd, 0);
		virt_map(vm, TEST_GPA, TEST_GPA, size / PAGE_SIZE);
		for (i = 0; i < NR_VCPUS; i++) {
			c[i] = (struct converter){ .vcpu = vcpus[i], .fd = fd, .id = i,
						   .mem = mem };
			vcpu_args_set(vcpus[i], 2, TEST_GPA + i * VCPU_PAGES * PAGE_SIZE, i);
			pthread_create(&c[i].thread, NULL, convert_loop, &c[i]);
		}
		clean = wait_converters(c);
		if (!clean)
			printf("# attempt %d: QEMU TCG's nested SVM bug, retrying\n", attempt);
		munmap(mem, size);
		close(fd);
		kvm_vm_free(vm);
	}
	for (i = 0, bad = 0; i < NR_VCPUS; i++)
		bad += c[i].bad;
	if (clean && !bad)
		ksft_test_result_pass("%d vCPUs and their converters, %d rounds: data intact\n",
				      NR_VCPUS, ROUNDS);
	else if (!clean)
		ksft_test_result_fail("QEMU TCG's nested SVM bug in %d attempts\n", attempt - 1);
	else
		ksft_test_result_fail("%d words wrong\n", bad);
}

/*
 * A huge file the VMM maps (HUGE | MMAP | INIT_SHARED): one 2 MiB folio,
 * mapped by the VMM with one PMD while all of it is shared, and by KVM
 * 2 MiB. One page converted to private while the VMM maps the others: the
 * conversion zaps the PMD and checks that page, not the folio, and nothing
 * is split; the VMM refaults the others a page at a time and gets SIGBUS on
 * that page only; KVM maps the block 4 KiB while it is mixed and 2 MiB again
 * once it is not, and so does a new mapping of the VMM's. The data survives
 * both ways.
 */
static void test_huge_mapped(void)
{
	uint64_t flags = HUGE | MMAP | SHARED;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(sw_protected, &vcpu, guest_touch);
	int fd = vm_create_guest_memfd(vm, HPAGE, flags);
	char *p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t splits = gmem_vmstat("thp_split_page"), pfn0 = 0, pfn5 = 0;
	int64_t huge2, huge4, mixed2, mixed4, again2, again4, last[2], while_private, page5;
	long pmd_whole, pmd_mixed, pmd_new;
	unsigned int around;
	int r;

	TEST_ASSERT(p != MAP_FAILED, "mmap of the file: errno %d", errno);
	TEST_ASSERT(!((uintptr_t)p & (HPAGE - 1)), "mapping at %p, not 2 MiB aligned", p);
	memset(p, 0x33, HPAGE);
	pmd_whole = gmem_smaps_kb(p, "FilePmdMapped");
	gmem_probe(probe_dev, fd, 0, &pfn0);
	gmem_probe(probe_dev, fd, 5 * PAGE_SIZE, &pfn5);
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, HPAGE, p, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, HPAGE / PAGE_SIZE);
	vcpu_args_set(vcpu, 2, TEST_GPA, HPAGE / PAGE_SIZE);
	last[0] = vm_get_stat(vm, "pages_2m");
	last[1] = vm_get_stat(vm, "pages_4k");
	touch_block(vcpu, last, &huge2, &huge4);
	r = gmem_set_attributes(fd, 5 * PAGE_SIZE, PAGE_SIZE, PRIVATE, NULL);
	while_private = peek((uint64_t *)(p + 5 * PAGE_SIZE));
	around = readable(p + 4 * PAGE_SIZE);	/* pages 4-7: 5 is private */
	pmd_mixed = gmem_smaps_kb(p, "FilePmdMapped");
	touch_block(vcpu, last, &mixed2, &mixed4);
	to_shared(fd, 5 * PAGE_SIZE, PAGE_SIZE);
	page5 = peek((uint64_t *)(p + 5 * PAGE_SIZE));
	touch_block(vcpu, last, &again2, &again4);
	/* The old mapping keeps its page table; a new one maps the folio whole. */
	munmap(p, HPAGE);
	p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap of the file: errno %d", errno);
	TEST_ASSERT(!((uintptr_t)p & (HPAGE - 1)), "mapping at %p, not 2 MiB aligned", p);
	page5 = page5 == peek((uint64_t *)(p + 5 * PAGE_SIZE)) ? page5 : -2;
	pmd_new = gmem_smaps_kb(p, "FilePmdMapped");
	if (!r && pfn5 == pfn0 + 5 && huge2 == 1 && mixed2 == -1 && mixed4 == 512 &&
	    again2 == 1 && again4 == -512 && while_private == -1 && around == 0xd &&
	    page5 == 5 && pmd_whole == 2048 && pmd_mixed == 0 &&
	    pmd_new == 2048 && gmem_vmstat("thp_split_page") == splits)
		ksft_test_result_pass("HUGE | MMAP: a page of a PMD-mapped 2 MiB folio %s\n",
				      "converted, no split");
	else
		ksft_test_result_fail("convert %d, pfns %#lx %#lx; 2M/4K %ld/%ld %ld/%ld %ld/%ld; "
				      "%ld %#x %#lx; PMD %ld/%ld/%ld kB; splits %lu\n", r, pfn0,
				      pfn5, huge2, huge4, mixed2, mixed4, again2, again4,
				      while_private, around, page5, pmd_whole, pmd_mixed, pmd_new,
				      gmem_vmstat("thp_split_page") - splits);
	kvm_vm_free(vm);
	munmap(p, HPAGE);
	close(fd);
}

int main(int argc, char *argv[])
{
	bool rust = !access("/sys/module/gmem_rs", F_OK);
	bool huge = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & HUGE;
	struct kvm_vm *pvm;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	probe_dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(probe_dev >= 0, "%s: errno %d (kvm_gmem_populate_test loaded?)",
		    GMEM_POPULATE_DEV, errno);

	ksft_print_header();
	if (!gmem_in_place()) {
		ksft_set_plan(1);
		test_off();
		ksft_finished();
	}
	ksft_set_plan(rust ? 9 + 2 * huge : 2);
	test_caps();
	pvm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	if (!rust) {
		test_c_backend(pvm);
		kvm_vm_free(pvm);
		ksft_finished();
	}
	test_errno(pvm);
	test_attributes(pvm);
	test_punch(pvm);
	test_fork(pvm);
	test_reference(pvm);
	kvm_vm_free(pvm);
	test_populate();
	test_guest();
	test_concurrent();
	if (huge) {
		test_huge();
		test_huge_mapped();
	}
	ksft_finished();
}
