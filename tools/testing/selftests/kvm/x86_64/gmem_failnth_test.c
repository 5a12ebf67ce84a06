// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_failnth_test: every allocation of every call fails once, in turn.
 *
 * For each call the project implements, the kernel's fault injection
 * (failslab and fail_page_alloc, driven by /proc/thread-self/fail-nth)
 * fails the call's 1st allocation, then its 2nd, and so on until the call
 * gets through with no failure injected. Each failure must return ENOMEM
 * (a guest fault: KVM_RUN's ENOMEM, or EFAULT with a memory-fault exit)
 * and change nothing a user can see (fds, module references, the file's
 * size, and for shmem its blocks; a slot's binding; the attributes as the
 * guest sees them); the next try must work. Calls that allocate must have
 * failed at least once; punch-hole and ftruncate must not allocate at all.
 * At the end every file is closed and memory, file descriptors and the
 * modules' reference counts are back to their baselines; on the debug
 * kernel, kmemleak (make check's kernel-log check) sees every failure path.
 *
 * A guest_memfd fallocate that fails part way keeps the pages it allocated
 * before the failure, zeroed, as 6.12's C guest_memfd does; close frees
 * them (checked at the end).
 *
 * The calls: KVM_CREATE_GUEST_MEMFD, fallocate, punch-hole, binding a
 * memslot to the file and deleting it, a guest's private fault (get_pfn)
 * and KVM_SET_MEMORY_ATTRIBUTES, on the backend under test; then
 * memfd_create(MFD_INACCESSIBLE), ftruncate, fallocate, punch-hole, a
 * memslot binding (memfile notifier registration), its deletion and a
 * private fault, on the memfd store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#ifndef MFD_INACCESSIBLE
#define MFD_INACCESSIBLE	0x0020U
#endif

#define TEST_GPA	0xc0000000ul
#define TEST_SLOT	10
#define NPAGES		256
#define ALLOC_NPAGES	16	/* what fallocate and punch work on */
#define MAX_NTH		2000
#define SLACK_KB	((long)(4 * PAGE_SIZE / 1024))
#define SHARED_PATTERN	0x5555555555555555ul
#define TAG(i)		(0xa5ul << 56 | (uint64_t)(i))

enum { CMD_TOUCH = 1, CMD_CHECK, CMD_COUNT_SHARED };

static uint64_t cmd, arg0, arg1;

/*
 * TOUCH page arg0 with value arg1; CHECK that it holds arg1; COUNT_SHARED:
 * how many of pages [arg0, arg1) hold what the host wrote.
 */
static void guest_code(void)
{
	GUEST_SYNC(0);
	for (;;) {
		uint64_t c = READ_ONCE(cmd), a = READ_ONCE(arg0), b = READ_ONCE(arg1), n = 0;

		if (c == CMD_TOUCH) {
			uint64_t *p = (uint64_t *)(TEST_GPA + a * PAGE_SIZE);
			uint64_t x = READ_ONCE(*p);

			__GUEST_ASSERT(!x || x == b, "page %lu: 0x%lx, wanted 0 or 0x%lx", a, x, b);
			WRITE_ONCE(*p, b);
		} else if (c == CMD_CHECK) {
			uint64_t x = READ_ONCE(*(uint64_t *)(TEST_GPA + a * PAGE_SIZE));

			__GUEST_ASSERT(x == b, "page %lu: 0x%lx, wanted 0x%lx", a, x, b);
		} else if (c == CMD_COUNT_SHARED) {
			for (uint64_t i = a; i < b; i++)
				n += READ_ONCE(*(uint64_t *)(TEST_GPA + i * PAGE_SIZE)) ==
				     SHARED_PATTERN;
		}
		GUEST_SYNC(n);
	}
}

static struct {
	bool memfd;			/* the store: MFD_INACCESSIBLE, or guest_memfd */
	const char *store;
	const char *module;		/* the module that serves the files, if any */
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;				/* the file under test */
	struct kvm_userspace_memory_region2 region;
	uint64_t next_page;		/* the next page a fault op touches */
	int nth_fd;
} t;

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	TEST_ASSERT(d, "opendir(/proc/self/fd): errno %d", errno);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/*
 * Unevictable: the files' pages. This test's own memory is mlocked, which
 * counts there too: unlocked while measuring.
 */
static long unevictable_kb(void)
{
	long kb;

	TEST_ASSERT(!munlockall(), "munlockall: errno %d", errno);
	gmem_drain_all_lru();
	kb = gmem_unevictable_kb();
	TEST_ASSERT(!mlockall(MCL_CURRENT | MCL_FUTURE), "mlockall: errno %d", errno);
	return kb;
}

static void write_knob(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open(%s): errno %d; is the kernel built with fault injection?",
		    path, errno);
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val), "write(%s): errno %d",
		    path, errno);
	close(fd);
}

/*
 * Fail sleeping and order-0 allocations too, and quietly. An allocation
 * that fails without __GFP_NOWARN still logs a report (warn_alloc) with a
 * call trace: make check's kernel-log check lets those pass between these
 * two markers, and nothing else.
 */
static void setup_fault_injection(bool on)
{
	const char *v = on ? "N" : "Y";
	int kmsg = open("/dev/kmsg", O_WRONLY);
	const char *mark = on ? "gmem_failnth_test: fault injection on\n" :
				"gmem_failnth_test: fault injection off\n";

	write_knob("/sys/kernel/debug/failslab/ignore-gfp-wait", v);
	write_knob("/sys/kernel/debug/failslab/verbose", on ? "0" : "2");
	write_knob("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", v);
	write_knob("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", v);
	write_knob("/sys/kernel/debug/fail_page_alloc/min-order", on ? "0" : "1");
	write_knob("/sys/kernel/debug/fail_page_alloc/verbose", on ? "0" : "2");
	TEST_ASSERT(kmsg >= 0 && write(kmsg, mark, strlen(mark)) == (ssize_t)strlen(mark),
		    "/dev/kmsg: errno %d", errno);
	close(kmsg);
}

static void restore_fault_injection(void)
{
	setup_fault_injection(false);
}

/* From now on, this thread's @n-th allocation fails. */
static void set_fail_nth(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	TEST_ASSERT(pwrite(t.nth_fd, buf, len, 0) == len, "fail-nth: errno %d", errno);
}

/* Whether the failure set by set_fail_nth() was injected; disarms it. */
static bool fail_injected(void)
{
	char buf[16] = {};

	TEST_ASSERT(pread(t.nth_fd, buf, sizeof(buf) - 1, 0) > 0, "fail-nth: errno %d", errno);
	set_fail_nth(0);
	return atoi(buf) == 0;
}

struct op {
	const char *name;
	int (*call)(void);		/* 0, or -errno */
	void (*undo)(void);		/* after a success: back to the state before */
	void (*unchanged)(void);	/* after a failure: assert nothing changed */
	bool fault;			/* a guest fault: EFAULT with a memory-fault exit too */
	int other_errno;		/* another errno the call documents, if any */
	enum { ALLOCATES, ABSORBS, NO_ALLOCATION } expect;
};

/* What unchanged() compares against, taken before each op. */
static struct {
	int fds;
	long refcnt;
	struct stat st;
} before;

static void take_before(void)
{
	before.fds = fd_count();
	before.refcnt = gmem_module_refcnt(t.module);
	if (t.fd >= 0)
		TEST_ASSERT(!fstat(t.fd, &before.st), "fstat: errno %d", errno);
}

static void same_fds_and_refs(void)
{
	TEST_ASSERT_EQ(fd_count(), before.fds);
	TEST_ASSERT_EQ(gmem_module_refcnt(t.module), before.refcnt);
}

static void same_file(void)
{
	struct stat st;

	same_fds_and_refs();
	TEST_ASSERT(!fstat(t.fd, &st), "fstat: errno %d", errno);
	TEST_ASSERT_EQ(st.st_size, before.st.st_size);
	/* shmem counts its pages (guest_memfd's pseudo inode does not). */
	TEST_ASSERT_EQ(st.st_blocks, before.st.st_blocks);
}

static void fail_in_turn(const struct op *op)
{
	int failures = 0, absorbed = 0, enomem = 0, other = 0;
	unsigned int n;

	take_before();
	for (n = 1; n <= MAX_NTH; n++) {
		int r;
		bool injected;

		set_fail_nth(n);
		r = op->call();
		injected = fail_injected();
		if (!r) {
			if (!injected)
				break;
			/* A failure something below tolerated (a fallback): succeeded anyway. */
			absorbed++;
			op->undo();
			take_before();
			continue;
		}
		TEST_ASSERT(injected, "%s %s: %s with no failure injected (try %u)", t.store,
			    op->name, strerror(-r), n);
		if (r == -ENOMEM) {
			enomem++;
		} else {
			TEST_ASSERT((op->fault && r == -EFAULT &&
				     t.vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT) ||
				    (op->other_errno && r == -op->other_errno),
				    "%s %s: allocation %u failed: %s, wanted ENOMEM", t.store,
				    op->name, n, strerror(-r));
			other++;
		}
		failures++;
		op->unchanged();
	}
	TEST_ASSERT(n <= MAX_NTH, "%s %s: still failing after %d tries", t.store, op->name,
		    MAX_NTH);
	/* Fault injection reached the call: its error paths ran, or it has none. */
	switch (op->expect) {
	case ALLOCATES:
		TEST_ASSERT(failures, "%s %s: no allocation failed", t.store, op->name);
		break;
	case ABSORBS:	/* the callee retries (xarray's xas_nomem()) */
		TEST_ASSERT(absorbed, "%s %s: no allocation failed", t.store, op->name);
		break;
	case NO_ALLOCATION:
		TEST_ASSERT(n == 1, "%s %s: allocates (%u tries), but must not", t.store,
			    op->name, n);
		break;
	}
	op->undo();
	printf("gmem_failnth: %s %s: %d allocations failed in turn (%d ENOMEM, %d %s), %s",
	       t.store, op->name, failures, enomem, other,
	       op->fault ? "EFAULT" : op->other_errno ? strerror(op->other_errno) : "other",
	       "each changed nothing");
	printf("; %d failures tolerated by the callee; try %u succeeded\n", absorbed, n);
}

/* --- the file --- */

static int do_create(void)
{
	int fd;

	if (t.memfd)
		fd = memfd_create("gmem_failnth_test", MFD_INACCESSIBLE);
	else
		fd = __vm_create_guest_memfd(t.vm, NPAGES * PAGE_SIZE, 0);
	if (fd < 0)
		return -errno;
	t.fd = fd;
	return 0;
}

/* The reference for MFD_INACCESSIBLE: shmem's own errnos. */
static int do_create_plain_memfd(void)
{
	int fd = memfd_create("gmem_failnth_test", 0);

	if (fd < 0)
		return -errno;
	t.fd = fd;
	return 0;
}

static void undo_create(void)
{
	close(t.fd);
	t.fd = -1;
}

static int do_ftruncate(void)
{
	return ftruncate(t.fd, NPAGES * PAGE_SIZE) ? -errno : 0;
}

/* The size is set once: a new file of size 0. */
static void undo_ftruncate(void)
{
	undo_create();
	TEST_ASSERT(!do_create(), "create: errno %d", errno);
}

static int do_allocate(void)
{
	return fallocate(t.fd, FALLOC_FL_KEEP_SIZE, 0, ALLOC_NPAGES * PAGE_SIZE) ? -errno : 0;
}

static int do_punch(void)
{
	return fallocate(t.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			 ALLOC_NPAGES * PAGE_SIZE) ? -errno : 0;
}

static void undo_allocate(void)
{
	TEST_ASSERT(!do_punch(), "punch: errno %d", errno);
}

static void undo_punch(void)
{
	TEST_ASSERT(!do_allocate(), "fallocate: errno %d", errno);
}

/* --- the memslot --- */

static int do_bind(void)
{
	t.region.memory_size = NPAGES * PAGE_SIZE;
	t.region.guest_memfd = t.fd;
	return __vm_ioctl(t.vm, KVM_SET_USER_MEMORY_REGION2, &t.region) ? -errno : 0;
}

static int do_unbind(void)
{
	t.region.memory_size = 0;
	return __vm_ioctl(t.vm, KVM_SET_USER_MEMORY_REGION2, &t.region) ? -errno : 0;
}

/* A failed bind left the file's range free (the next bind would be EEXIST otherwise). */
static void undo_bind(void)
{
	TEST_ASSERT(!do_unbind(), "deleting the memslot: errno %d", errno);
}

/* A failed deletion left the slot (deleting a missing slot would be EINVAL). */
static void undo_unbind(void)
{
	TEST_ASSERT(!do_bind(), "binding again: errno %d", errno);
}

/* --- the guest --- */

static uint64_t run_guest(uint64_t c, uint64_t a, uint64_t b)
{
	struct ucall uc;

	cmd = c;
	arg0 = a;
	arg1 = b;
	sync_global_to_guest(t.vm, cmd);
	sync_global_to_guest(t.vm, arg0);
	sync_global_to_guest(t.vm, arg1);
	vcpu_run(t.vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(t.vcpu, KVM_EXIT_IO);
	if (get_ucall(t.vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT_EQ(uc.cmd, UCALL_SYNC);
	return uc.args[1];
}

/* The guest touches t.next_page, which no fault has reached yet. */
static void next_fault(void)
{
	t.next_page++;
	TEST_ASSERT(t.next_page < NPAGES, "out of fresh pages");
	cmd = CMD_TOUCH;
	arg0 = t.next_page;
	arg1 = TAG(t.next_page);
	sync_global_to_guest(t.vm, cmd);
	sync_global_to_guest(t.vm, arg0);
	sync_global_to_guest(t.vm, arg1);
}

/* KVM_RUN alone: reading the ucall (KVM_GET_REGS) allocates too. */
static int do_fault(void)
{
	return __vcpu_run(t.vcpu) ? -errno : 0;
}

/* The guest got past its access to the page: on to a fresh one. */
static void fault_done(void)
{
	struct ucall uc;

	TEST_ASSERT_KVM_EXIT_REASON(t.vcpu, KVM_EXIT_IO);
	if (get_ucall(t.vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT_EQ(uc.cmd, UCALL_SYNC);
	next_fault();
}

/* The guest retries the same access: nothing to check but that it works later. */
static void fault_unchanged(void)
{
	same_fds_and_refs();
}

/*
 * Pages [64, 128) start shared, showing the host's data: no attribute entry
 * is left in their xarray node, so making them private allocates one.
 */
#define CONV_FIRST	64
#define CONV_NPAGES	64

static int set_attributes(uint64_t attributes)
{
	struct kvm_memory_attributes attr = {
		.address = TEST_GPA + CONV_FIRST * PAGE_SIZE,
		.size = CONV_NPAGES * PAGE_SIZE,
		.attributes = attributes,
	};

	return __vm_ioctl(t.vm, KVM_SET_MEMORY_ATTRIBUTES, &attr) ? -errno : 0;
}

static uint64_t guest_sees_shared(void)
{
	return run_guest(CMD_COUNT_SHARED, CONV_FIRST, CONV_FIRST + CONV_NPAGES);
}

static int do_convert(void)
{
	return set_attributes(KVM_MEMORY_ATTRIBUTE_PRIVATE);
}

/* Private, the guest sees none of the host's data; shared again, all of it. */
static void undo_convert(void)
{
	TEST_ASSERT_EQ(guest_sees_shared(), 0);
	TEST_ASSERT(!set_attributes(0), "converting back: errno %d", errno);
	TEST_ASSERT_EQ(guest_sees_shared(), CONV_NPAGES);
}

/* A failed conversion left every page shared. */
static void convert_unchanged(void)
{
	same_fds_and_refs();
	TEST_ASSERT_EQ(guest_sees_shared(), CONV_NPAGES);
}

static void run_store(bool memfd)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	const struct op create = { "create", do_create, undo_create, same_fds_and_refs,
				   .other_errno = memfd ? ENOSPC : 0 };
	const struct op plain = { "create without MFD_INACCESSIBLE (reference)",
				  do_create_plain_memfd, undo_create, same_fds_and_refs,
				  .other_errno = ENOSPC };
	const struct op truncate = { "ftruncate", do_ftruncate, undo_ftruncate, same_file,
				     .expect = NO_ALLOCATION };
	const struct op allocate = { "fallocate", do_allocate, undo_allocate, same_file };
	const struct op punch = { "punch-hole", do_punch, undo_punch, same_file,
				  .expect = NO_ALLOCATION };
	const struct op bind = { "memslot bind", do_bind, undo_bind, same_fds_and_refs };
	const struct op unbind = { "memslot delete", do_unbind, undo_unbind, same_fds_and_refs };
	const struct op fault = { "private fault", do_fault, fault_done, fault_unchanged, true };
	const struct op convert = { "set attributes (shared to private)", do_convert,
				    undo_convert, convert_unchanged, .expect = ABSORBS };
	long base_kb = unevictable_kb(), base_ref, kb, ref;
	int base_fds = fd_count();
	uint8_t *shared;

	t.memfd = memfd;
	t.store = memfd ? "MFD_INACCESSIBLE" : "guest_memfd";
	t.module = memfd ? "memfd_inaccessible" :
		   !access("/sys/module/gmem_rs", F_OK) ? "gmem_rs" : NULL;
	t.fd = -1;
	base_ref = gmem_module_refcnt(t.module);

	t.vm = vm_create_shape_with_one_vcpu(shape, &t.vcpu, guest_code);
	shared = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(shared != MAP_FAILED, "mmap: errno %d", errno);
	for (int i = 0; i < NPAGES; i++)
		*(uint64_t *)(shared + i * PAGE_SIZE) = SHARED_PATTERN;
	t.region = (struct kvm_userspace_memory_region2) {
		.slot = TEST_SLOT,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = TEST_GPA,
		.userspace_addr = (uint64_t)shared,
	};
	virt_map(t.vm, TEST_GPA, TEST_GPA, NPAGES);
	vm_mem_set_private(t.vm, TEST_GPA, NPAGES * PAGE_SIZE);
	vm_mem_set_shared(t.vm, TEST_GPA + CONV_FIRST * PAGE_SIZE, CONV_NPAGES * PAGE_SIZE);
	/* The vCPU's own first-run allocations are not what this tests. */
	TEST_ASSERT_EQ(run_guest(0, 0, 0), 0);

	/* shmem fails an inode allocation with ENOSPC, with or without the flag. */
	if (memfd)
		fail_in_turn(&plain);
	fail_in_turn(&create);
	TEST_ASSERT(!do_create(), "create: errno %d", errno);
	if (memfd) {
		fail_in_turn(&truncate);
		TEST_ASSERT(!do_ftruncate(), "ftruncate: errno %d", errno);
	}
	fail_in_turn(&allocate);
	TEST_ASSERT(!do_allocate(), "fallocate: errno %d", errno);
	fail_in_turn(&punch);
	fail_in_turn(&bind);
	TEST_ASSERT(!do_bind(), "bind: errno %d", errno);
	fail_in_turn(&unbind);

	/* Faults start after the pages that convert. */
	t.next_page = CONV_FIRST + CONV_NPAGES;
	next_fault();
	fail_in_turn(&fault);
	if (!memfd)
		fail_in_turn(&convert);
	/* Every page the faults reached holds what the guest wrote. */
	for (uint64_t i = CONV_FIRST + CONV_NPAGES + 1; i < t.next_page; i++)
		run_guest(CMD_CHECK, i, TAG(i));

	TEST_ASSERT(!do_unbind(), "delete: errno %d", errno);
	close(t.fd);
	t.fd = -1;
	kvm_vm_free(t.vm);
	munmap(shared, NPAGES * PAGE_SIZE);

	for (int i = 0; i < 20; i++) {
		kb = unevictable_kb();
		ref = gmem_module_refcnt(t.module);
		if (kb <= base_kb + SLACK_KB && ref == base_ref)
			break;
		usleep(100 * 1000);
	}
	TEST_ASSERT(kb <= base_kb + SLACK_KB, "%s: Unevictable %ld kB after close, %ld kB before",
		    t.store, kb, base_kb);
	TEST_ASSERT(ref == base_ref, "%s: %s refcnt %ld after close, %ld before", t.store,
		    t.module, ref, base_ref);
	TEST_ASSERT_EQ(fd_count(), base_fds);
	printf("gmem_failnth: %s: after close: Unevictable %ld kB (%ld before), %s refcnt %ld",
	       t.store, kb, base_kb, t.module ?: "no module", ref);
	printf(", no fd left\n");
}

int main(int argc, char *argv[])
{
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	/* No page fault of ours between arming and disarming takes a count. */
	TEST_ASSERT(!mlockall(MCL_CURRENT | MCL_FUTURE), "mlockall: errno %d", errno);
	t.nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	TEST_ASSERT(t.nth_fd >= 0,
		    "/proc/thread-self/fail-nth: errno %d; no CONFIG_FAULT_INJECTION?", errno);
	setup_fault_injection(true);
	atexit(restore_fault_injection);

	run_store(false);
	run_store(true);
	return 0;
}
