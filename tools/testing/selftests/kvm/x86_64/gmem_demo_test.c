// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_demo_test: the whole guest private memory path, step by step.
 *
 * A software-protected VM gets a memslot backed by a guest_memfd. Its
 * guest writes and reads private memory, the host converts the range to
 * shared and back, and a hole punched in the guest_memfd reads as zeros
 * in the guest while the rest keeps its data. Each step prints a line.
 */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define DEMO_GPA	0xc0000000ul
#define DEMO_SLOT	10
#define DEMO_NPAGES	512			/* 2 MiB */
#define DEMO_SIZE	(DEMO_NPAGES * PAGE_SIZE)
#define HOLE_SIZE	(DEMO_SIZE / 2)

#define PRIV_PATTERN	0xababababababababul
#define SHARED_PATTERN	0xcdcdcdcdcdcdcdcdul
#define PRIV_PATTERN2	0x5a5a5a5a5a5a5a5aul

enum { STAGE_PRIVATE = 1, STAGE_SHARED, STAGE_PRIVATE_AGAIN, STAGE_HOLE };

static void guest_fill(uint64_t gva, uint64_t size, uint64_t val)
{
	for (uint64_t i = 0; i < size; i += sizeof(uint64_t))
		WRITE_ONCE(*(uint64_t *)(gva + i), val);
}

static void guest_check(uint64_t gva, uint64_t size, uint64_t val)
{
	for (uint64_t i = 0; i < size; i += sizeof(uint64_t))
		GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(gva + i)), val);
}

static void guest_code(uint64_t gva, uint64_t size)
{
	/* Private: only the guest, through guest_memfd, sees this. */
	guest_fill(gva, size, PRIV_PATTERN);
	guest_check(gva, size, PRIV_PATTERN);
	GUEST_SYNC(STAGE_PRIVATE);

	/* The host made the range shared: writes land in host memory. */
	guest_fill(gva, size, SHARED_PATTERN);
	GUEST_SYNC(STAGE_SHARED);

	/* Private again. */
	guest_fill(gva, size, PRIV_PATTERN2);
	guest_check(gva, size, PRIV_PATTERN2);
	GUEST_SYNC(STAGE_PRIVATE_AGAIN);

	/* The host punched a hole over the first half. */
	guest_check(gva, HOLE_SIZE, 0);
	guest_check(gva + HOLE_SIZE, size - HOLE_SIZE, PRIV_PATTERN2);
	GUEST_SYNC(STAGE_HOLE);

	GUEST_DONE();
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The host's view of the slot's shared memory (its userspace_addr). */
static bool host_view_is(struct kvm_vm *vm, uint64_t val)
{
	uint64_t *hva = addr_gpa2hva(vm, DEMO_GPA);

	for (uint64_t i = 0; i < DEMO_SIZE / sizeof(uint64_t); i++)
		if (hva[i] != val)
			return false;
	return true;
}

int main(int argc, char *argv[])
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	double t0, t;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));

	t0 = now_ms();
	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DEMO_GPA, DEMO_SLOT,
				    DEMO_NPAGES, KVM_MEM_GUEST_MEMFD);
	virt_map(vm, DEMO_GPA, DEMO_GPA, DEMO_NPAGES);
	vcpu_args_set(vcpu, 2, DEMO_GPA, DEMO_SIZE);
	memset(addr_gpa2hva(vm, DEMO_GPA), 0, DEMO_SIZE);
	vm_mem_set_private(vm, DEMO_GPA, DEMO_SIZE);
	printf("gmem_demo: SW-protected VM, %lu KiB slot backed by guest_memfd fd %d  (%.0f ms)\n",
	       (unsigned long)(DEMO_SIZE >> 10), memslot2region(vm, DEMO_SLOT)->region.guest_memfd,
	       now_ms() - t0);

	t = now_ms();
	gmem_run_to_sync(vcpu, STAGE_PRIVATE);
	TEST_ASSERT(host_view_is(vm, 0), "private writes leaked into shared memory");
	printf("gmem_demo: guest wrote and read back private memory; "
	       "host's shared view untouched  (%.0f ms)\n", now_ms() - t);

	t = now_ms();
	vm_mem_set_shared(vm, DEMO_GPA, DEMO_SIZE);
	gmem_run_to_sync(vcpu, STAGE_SHARED);
	TEST_ASSERT(host_view_is(vm, SHARED_PATTERN),
		    "host does not see the guest's shared writes");
	printf("gmem_demo: converted to shared; host sees the guest's writes  (%.0f ms)\n",
	       now_ms() - t);

	t = now_ms();
	vm_mem_set_private(vm, DEMO_GPA, DEMO_SIZE);
	gmem_run_to_sync(vcpu, STAGE_PRIVATE_AGAIN);
	TEST_ASSERT(host_view_is(vm, SHARED_PATTERN),
		    "private writes leaked into shared memory");
	printf("gmem_demo: converted back to private; guest wrote and read back  (%.0f ms)\n",
	       now_ms() - t);

	t = now_ms();
	vm_guest_mem_punch_hole(vm, DEMO_GPA, HOLE_SIZE);
	gmem_run_to_sync(vcpu, STAGE_HOLE);
	printf("gmem_demo: punched a %lu KiB hole; "
	       "guest reads zeros there, its data elsewhere  (%.0f ms)\n",
	       (unsigned long)(HOLE_SIZE >> 10), now_ms() - t);

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
	printf("gmem_demo: done  (%.0f ms in all)\n", now_ms() - t0);
	return 0;
}
