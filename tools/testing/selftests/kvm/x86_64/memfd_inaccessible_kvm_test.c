// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_inaccessible_kvm_test: memfd_create(MFD_INACCESSIBLE) as the
 * private memory of a KVM memslot.
 *
 * A software-protected VM gets memslots whose private memory is an
 * MFD_INACCESSIBLE memfd, bound with KVM_SET_USER_MEMORY_REGION2 exactly
 * like a guest_memfd. The guest writes and reads it while the host cannot;
 * conversions to shared and back keep the private data, and a private
 * access without private memory exits to userspace; a hole punched in the
 * memfd reads as zeros in the guest; deleting the memslot and closing the
 * memfd, in either order, give all the memory back (/proc/meminfo's
 * Unevictable), while a memslot alone keeps the file alive. Binding follows
 * guest_memfd's rules: no overlapping slots, one VM per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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
#define PLAIN_GPA	0xd0000000ul	/* a slot without private memory */
#define PLAIN_SLOT	11

#define NPAGES		16
#define PUNCH_OFFSET	4		/* memfd pages before the slot's */
#define HOLE_FIRST	6		/* guest pages 6..9 get punched */
#define HOLE_NPAGES	4
#define BIG_NPAGES	256		/* 1 MiB */
#define BIG_KB		((long)(BIG_NPAGES * PAGE_SIZE / 1024))
#define SLACK_KB	((long)(16 * PAGE_SIZE / 1024))

#define SEED_WRITE_READ	0x1111000000000000ul
#define SEED_PUNCH	0x2222000000000000ul
#define SEED_TOUCH	0x3333000000000000ul
#define CONV_PRIVATE	0x5a5a5a5a5a5a5a5aul
#define CONV_HOST	0xc3c3c3c3c3c3c3c3ul

/* Each page gets its own pattern, in its first and last qwords. */
#define PATTERN(seed, i)	((seed) | (i))
#define FIRST(gpa, i)	((uint64_t *)((gpa) + (i) * PAGE_SIZE))
#define LAST(gpa, i)	((uint64_t *)((gpa) + ((i) + 1) * PAGE_SIZE - 8))

static void guest_fill(uint64_t gpa, uint64_t npages, uint64_t seed)
{
	for (uint64_t i = 0; i < npages; i++) {
		WRITE_ONCE(*FIRST(gpa, i), PATTERN(seed, i));
		WRITE_ONCE(*LAST(gpa, i), ~PATTERN(seed, i));
	}
}

static void guest_check_page(uint64_t gpa, uint64_t i, uint64_t seed, bool hole)
{
	GUEST_ASSERT_EQ(READ_ONCE(*FIRST(gpa, i)), hole ? 0 : PATTERN(seed, i));
	GUEST_ASSERT_EQ(READ_ONCE(*LAST(gpa, i)), hole ? 0 : ~PATTERN(seed, i));
}

static void guest_check(uint64_t gpa, uint64_t npages, uint64_t seed)
{
	for (uint64_t i = 0; i < npages; i++)
		guest_check_page(gpa, i, seed, false);
}

static void guest_write_read(uint64_t gpa, uint64_t npages)
{
	guest_fill(gpa, npages, SEED_WRITE_READ);
	guest_check(gpa, npages, SEED_WRITE_READ);
	GUEST_DONE();
}

static void guest_conversion(uint64_t gpa, uint64_t plain_gpa)
{
	WRITE_ONCE(*FIRST(gpa, 0), CONV_PRIVATE);
	GUEST_SYNC(1);
	/* The host made the page shared and wrote its view of it. */
	GUEST_ASSERT_EQ(READ_ONCE(*FIRST(gpa, 0)), CONV_HOST);
	GUEST_SYNC(2);
	/* Private again: the memfd still holds the private data. */
	GUEST_ASSERT_EQ(READ_ONCE(*FIRST(gpa, 0)), CONV_PRIVATE);
	/* Private in the attributes, in a slot without private memory. */
	GUEST_ASSERT_EQ(READ_ONCE(*FIRST(plain_gpa, 0)), CONV_HOST);
	GUEST_DONE();
}

static void guest_punch(uint64_t gpa, uint64_t npages)
{
	guest_fill(gpa, npages, SEED_PUNCH);
	guest_check(gpa, npages, SEED_PUNCH);
	GUEST_SYNC(1);
	for (uint64_t i = 0; i < npages; i++)
		guest_check_page(gpa, i, SEED_PUNCH,
				 i >= HOLE_FIRST && i < HOLE_FIRST + HOLE_NPAGES);
	GUEST_DONE();
}

static void guest_touch(uint64_t gpa, uint64_t npages)
{
	guest_fill(gpa, npages, SEED_TOUCH);
	GUEST_SYNC(1);
	guest_check(gpa, npages, SEED_TOUCH);
	GUEST_SYNC(2);
	GUEST_DONE();
}

/* KVM_RUN fails with EFAULT and a private memory fault on @gpa's page. */
static void run_to_private_fault(struct kvm_vcpu *vcpu, uint64_t gpa)
{
	struct kvm_run *run = vcpu->run;
	int r = _vcpu_run(vcpu);

	TEST_ASSERT(r == -1 && errno == EFAULT,
		    "KVM_RUN: %d, errno %d, wanted EFAULT", r, errno);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	TEST_ASSERT_EQ(run->memory_fault.gpa, gpa);
	TEST_ASSERT_EQ(run->memory_fault.size, PAGE_SIZE);
}

static int inaccessible_memfd(uint64_t npages)
{
	int fd = memfd_create("memfd_inaccessible_kvm_test", MFD_INACCESSIBLE);

	TEST_ASSERT(fd >= 0,
		    "memfd_create(MFD_INACCESSIBLE): errno %d (%s); is memfd_inaccessible.ko loaded?",
		    errno, strerror(errno));
	TEST_ASSERT(!ftruncate(fd, npages * PAGE_SIZE), "ftruncate: errno %d", errno);
	return fd;
}

/*
 * A VM whose slot TEST_SLOT at TEST_GPA has @memfd, from page @offset on,
 * as its private memory, all of it private. The library binds a dup of
 * @memfd, which it closes when it deletes the slot.
 */
static struct kvm_vm *memfd_vm(void *guest_code, struct kvm_vcpu **vcpu,
			       int memfd, uint64_t offset, uint64_t npages)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(shape, vcpu, guest_code);

	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, npages,
		   KVM_MEM_GUEST_MEMFD, memfd, offset * PAGE_SIZE);
	virt_map(vm, TEST_GPA, TEST_GPA, npages);
	vm_mem_set_private(vm, TEST_GPA, npages * PAGE_SIZE);
	vcpu_args_set(*vcpu, 2, TEST_GPA, npages);
	return vm;
}

static void write_read_private(void)
{
	uint64_t *shared;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char buf[8];
	void *map;
	int fd;

	fd = inaccessible_memfd(NPAGES);
	vm = memfd_vm(guest_write_read, &vcpu, fd, 0, NPAGES);
	gmem_run_to_done(vcpu);

	TEST_ASSERT(read(fd, buf, sizeof(buf)) == -1 && errno == EPERM,
		    "read() of a bound MFD_INACCESSIBLE memfd: errno %d, wanted EPERM", errno);
	map = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	TEST_ASSERT(map == MAP_FAILED && errno == EPERM,
		    "mmap() of a bound MFD_INACCESSIBLE memfd: errno %d, wanted EPERM", errno);
	shared = addr_gpa2hva(vm, TEST_GPA);
	for (uint64_t i = 0; i < NPAGES * PAGE_SIZE / 8; i++)
		TEST_ASSERT(!shared[i], "private data leaked into the shared view at %lu", i);

	kvm_vm_free(vm);
	close(fd);
	pr_info("%s: guest wrote and read back %d private pages; read() and mmap() are EPERM, shared view untouched\n",
		__func__, NPAGES);
}

static void conversion_exit(void)
{
	uint64_t *host_view, *plain_view;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd;

	fd = inaccessible_memfd(NPAGES);
	vm = memfd_vm(guest_conversion, &vcpu, fd, 0, NPAGES);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, PLAIN_GPA, PLAIN_SLOT, 1, 0);
	virt_map(vm, PLAIN_GPA, PLAIN_GPA, 1);
	vcpu_args_set(vcpu, 2, TEST_GPA, PLAIN_GPA);
	host_view = addr_gpa2hva(vm, TEST_GPA);
	plain_view = addr_gpa2hva(vm, PLAIN_GPA);

	gmem_run_to_sync(vcpu, 1);
	TEST_ASSERT_EQ(*host_view, 0ul);

	/* Shared: the guest now sees the host's view of the page. */
	vm_mem_set_shared(vm, TEST_GPA, PAGE_SIZE);
	*host_view = CONV_HOST;
	gmem_run_to_sync(vcpu, 2);

	/*
	 * Private again, and the guest goes on to a page that is private in
	 * the attributes but lies in a slot with no private memory: KVM_RUN
	 * exits with a private memory fault for exactly that page. Once the
	 * host converts it to shared, the access goes through.
	 */
	vm_mem_set_private(vm, TEST_GPA, PAGE_SIZE);
	vm_mem_set_private(vm, PLAIN_GPA, PAGE_SIZE);
	*plain_view = CONV_HOST;
	run_to_private_fault(vcpu, PLAIN_GPA);
	vm_mem_set_shared(vm, PLAIN_GPA, PAGE_SIZE);
	gmem_run_to_done(vcpu);
	TEST_ASSERT_EQ(*host_view, CONV_HOST);

	kvm_vm_free(vm);
	close(fd);
	pr_info("%s: private->shared->private keeps the memfd's data; private access without private memory exits MEMORY_FAULT (PRIVATE, gpa 0x%lx, 4 KiB), shared then works\n",
		__func__, PLAIN_GPA);
}

static void punch_reads_zero(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd;

	/* The slot starts PUNCH_OFFSET pages into the memfd. */
	fd = inaccessible_memfd(PUNCH_OFFSET + NPAGES + 4);
	vm = memfd_vm(guest_punch, &vcpu, fd, PUNCH_OFFSET, NPAGES);
	gmem_run_to_sync(vcpu, 1);

	TEST_ASSERT(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (PUNCH_OFFSET + HOLE_FIRST) * PAGE_SIZE,
			       HOLE_NPAGES * PAGE_SIZE),
		    "punching the memfd: errno %d", errno);
	gmem_run_to_done(vcpu);

	kvm_vm_free(vm);
	close(fd);
	pr_info("%s: punched memfd pages %d-%d (guest pages %d-%d of %d): zeros there, patterns elsewhere\n",
		__func__, PUNCH_OFFSET + HOLE_FIRST,
		PUNCH_OFFSET + HOLE_FIRST + HOLE_NPAGES - 1,
		HOLE_FIRST, HOLE_FIRST + HOLE_NPAGES - 1, NPAGES);
}

static void expect_grown(long base, const char *when)
{
	long now = gmem_unevictable_kb();

	TEST_ASSERT(now - base >= BIG_KB * 9 / 10,
		    "%s: Unevictable grew by %ld kB, wanted >= %ld kB", when, now - base,
		    BIG_KB * 9 / 10);
}

/* Frees may finish a little after close(): wait up to about 2 s. */
static void expect_back(long base, const char *when)
{
	long now = gmem_unevictable_kb();

	for (int i = 0; i < 20 && now > base + SLACK_KB; i++) {
		usleep(100 * 1000);
		now = gmem_unevictable_kb();
	}
	TEST_ASSERT(now <= base + SLACK_KB,
		    "%s: Unevictable is %ld kB, %ld kB above the baseline (slack %ld kB)",
		    when, now, now - base, SLACK_KB);
}

/* Delete the slot, then close the memfd: the guest loses the gpa. */
static void delete_slot_first(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct kvm_run *run;
	long base;
	int fd;

	base = gmem_unevictable_kb();
	fd = inaccessible_memfd(BIG_NPAGES);
	vm = memfd_vm(guest_touch, &vcpu, fd, 0, BIG_NPAGES);
	gmem_run_to_sync(vcpu, 1);
	expect_grown(base, "guest touched 1 MiB");

	/*
	 * No slot at a private gpa: a private memory fault. Made shared, the
	 * gpa is MMIO: the guest's read of it exits as such.
	 */
	vm_mem_region_delete(vm, TEST_SLOT);
	run_to_private_fault(vcpu, TEST_GPA);
	vm_mem_set_shared(vm, TEST_GPA, BIG_NPAGES * PAGE_SIZE);
	TEST_ASSERT_EQ(_vcpu_run(vcpu), 0);
	run = vcpu->run;
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(run->mmio.phys_addr, TEST_GPA);
	TEST_ASSERT_EQ(run->mmio.is_write, 0);

	close(fd);
	kvm_vm_free(vm);
	expect_back(base, "slot deleted, memfd closed, VM freed");
	pr_info("delete_and_close_leave_nothing: slot deleted: private fault, then MMIO read at 0x%lx; memory returned\n",
		TEST_GPA);
}

/* Close every fd of the memfd first: the slot keeps the file alive. */
static void close_memfd_first(void)
{
	struct userspace_mem_region *region;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	long base;
	int fd;

	base = gmem_unevictable_kb();
	fd = inaccessible_memfd(BIG_NPAGES);
	vm = memfd_vm(guest_touch, &vcpu, fd, 0, BIG_NPAGES);
	gmem_run_to_sync(vcpu, 1);
	expect_grown(base, "guest touched 1 MiB");

	/* Ours, and the library's dup (it must not close it again). */
	close(fd);
	region = memslot2region(vm, TEST_SLOT);
	close(region->region.guest_memfd);
	region->region.guest_memfd = -1;

	gmem_run_to_sync(vcpu, 2);
	expect_grown(base, "memfd closed, slot alive");
	gmem_run_to_done(vcpu);

	kvm_vm_free(vm);
	expect_back(base, "memfd closed, VM freed");
	pr_info("delete_and_close_leave_nothing: memfd closed first: guest still read its 1 MiB; memory returned with the VM\n");
}

/* Bind memfd pages [@first, @first + NPAGES) to @slot of @vm at @gpa. */
static int bind(struct kvm_vm *vm, uint32_t slot, uint64_t gpa, int fd, uint64_t first, void *hva)
{
	int r = __vm_set_user_memory_region2(vm, slot, KVM_MEM_GUEST_MEMFD, gpa,
					     NPAGES * PAGE_SIZE, hva, fd, first * PAGE_SIZE);

	return r ? -errno : 0;
}

/*
 * guest_memfd's rules: no two memslots bind the same pages of a file, and a
 * file serves one VM. A range freed by deleting its slot can be bound again.
 */
static void bind_rules(void)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	struct kvm_vm *other = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	void *hva = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = inaccessible_memfd(4 * NPAGES);

	TEST_ASSERT(hva != MAP_FAILED, "mmap: errno %d", errno);
	TEST_ASSERT_EQ(bind(vm, 1, TEST_GPA, fd, 0, hva), 0);
	TEST_ASSERT_EQ(bind(vm, 2, TEST_GPA + 0x100000, fd, NPAGES / 2, hva), -EINVAL);
	TEST_ASSERT_EQ(bind(vm, 2, TEST_GPA + 0x100000, fd, NPAGES, hva), 0);
	TEST_ASSERT_EQ(bind(other, 1, TEST_GPA, fd, 2 * NPAGES, hva), -EINVAL);
	/* Deleting slot 1 frees its pages for another slot of the VM. */
	TEST_ASSERT_EQ(__vm_set_user_memory_region2(vm, 1, KVM_MEM_GUEST_MEMFD, TEST_GPA,
						    0, hva, fd, 0), 0);
	TEST_ASSERT_EQ(bind(vm, 3, TEST_GPA + 0x200000, fd, 0, hva), 0);

	kvm_vm_free(other);
	kvm_vm_free(vm);
	close(fd);
	munmap(hva, NPAGES * PAGE_SIZE);
	pr_info("%s: overlapping slot EINVAL, adjacent slot works, another VM EINVAL, freed pages rebind\n",
		__func__);
}

static void delete_and_close_leave_nothing(void)
{
	/* Allocations and drains on one CPU: its LRU batch is all there is. */
	gmem_pin_to_this_cpu();
	delete_slot_first();
	close_memfd_first();
}

/* memfd_inaccessible.ko's reference count, or -1 if it is built in. */
static long store_module_refcnt(void)
{
	FILE *f = fopen("/sys/module/memfd_inaccessible/refcnt", "r");
	long n = -1;

	if (!f)
		return -1;
	TEST_ASSERT(fscanf(f, "%ld", &n) == 1, "reading memfd_inaccessible's refcnt");
	fclose(f);
	return n;
}

/* A memslot bound to an MFD_INACCESSIBLE file pins the store's module. */
static void binding_pins_store(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	long before, bound, after;
	int fd;

	fd = inaccessible_memfd(NPAGES);
	before = store_module_refcnt();
	if (before < 0) {
		pr_info("%s: not run: memfd_inaccessible is built in\n", __func__);
		close(fd);
		return;
	}
	vm = memfd_vm(guest_touch, &vcpu, fd, 0, NPAGES);
	bound = store_module_refcnt();
	vm_mem_region_delete(vm, TEST_SLOT);
	after = store_module_refcnt();
	kvm_vm_free(vm);
	close(fd);
	TEST_ASSERT(bound == before + 1 && after == before,
		    "memfd_inaccessible refcnt %ld, bound %ld, unbound %ld: wanted +1 while bound",
		    before, bound, after);
	pr_info("%s: the binding held a reference on memfd_inaccessible (%ld -> %ld -> %ld)\n",
		__func__, before, bound, after);
}

int main(void)
{
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));

	write_read_private();
	conversion_exit();
	punch_reads_zero();
	bind_rules();
	binding_pins_store();
	delete_and_close_leave_nothing();
	pr_info("memfd_inaccessible_kvm_test: all cases passed\n");
	return 0;
}
