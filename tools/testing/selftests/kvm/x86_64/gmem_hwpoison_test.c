// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_hwpoison_test: a memory error in one guest_memfd page fails the
 * guest's access to that gfn with EHWPOISON, and nothing else.
 *
 * The guest touches four private pages. The host learns the pfn behind
 * the first one from the TDP MMU's kvm_tdp_mmu_spte_changed tracepoint and
 * injects a memory error there (hwpoison-inject's corrupt-pfn). Then the
 * guest reads the other three pages (which must still work) and the
 * poisoned one, where KVM_RUN must fail with EHWPOISON and a private
 * KVM_EXIT_MEMORY_FAULT for exactly that page. Punching the page out of
 * the guest_memfd recovers: the guest then reads a fresh zeroed page.
 * Then the same with an MFD_INACCESSIBLE memfd as the private memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#ifndef MFD_INACCESSIBLE
#define MFD_INACCESSIBLE	0x0020U
#endif

#define TEST_GPA	0xc0000000ul
#define TEST_SLOT	10
#define TEST_NPAGES	4
#define TEST_SIZE	(TEST_NPAGES * PAGE_SIZE)
#define PATTERN		0x6a6a6a6a6a6a6a6aul

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"

enum { STAGE_TOUCHED = 1, STAGE_OTHERS_OK, STAGE_RECOVERED };

static void guest_code(uint64_t gpa)
{
	for (int i = 0; i < TEST_NPAGES; i++)
		WRITE_ONCE(*(uint64_t *)(gpa + i * PAGE_SIZE), PATTERN);
	GUEST_SYNC(STAGE_TOUCHED);

	for (int i = 1; i < TEST_NPAGES; i++)
		GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(gpa + i * PAGE_SIZE)), PATTERN);
	GUEST_SYNC(STAGE_OTHERS_OK);

	/* The poisoned page: the first try exits to the host. */
	GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)gpa), 0);
	GUEST_SYNC(STAGE_RECOVERED);
	GUEST_DONE();
}

/* A SW_PROTECTED VM whose private memory is @fd (-1: a new guest_memfd). */
static void run(const char *what, int fd)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	uint64_t gfn = TEST_GPA >> PAGE_SHIFT, pfn;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	char buf[64];
	int cfd, r;

	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, TEST_NPAGES,
		   KVM_MEM_GUEST_MEMFD, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, TEST_NPAGES);
	vm_mem_set_private(vm, TEST_GPA, TEST_SIZE);
	vcpu_args_set(vcpu, 1, TEST_GPA);

	snprintf(buf, sizeof(buf), "gfn == 0x%lx", gfn);
	gmem_write_file(GMEM_SPTE_EVENT "/filter", buf);
	gmem_write_file(GMEM_TRACING "/trace", "");
	gmem_write_file(GMEM_SPTE_EVENT "/enable", "1");
	gmem_run_to_sync(vcpu, STAGE_TOUCHED);
	gmem_write_file(GMEM_SPTE_EVENT "/enable", "0");
	gmem_write_file(GMEM_SPTE_EVENT "/filter", "0");

	pfn = gmem_traced_pfn(gfn, PG_LEVEL_4K);
	TEST_ASSERT(pfn, "%s: no SPTE for gfn 0x%lx in the trace", what, gfn);
	/*
	 * guest_memfd keeps the poisoned folio and answers MF_DELAYED, which
	 * 6.12's memory_failure() counts as a failure to recover: the injector
	 * says EBUSY, with the page marked poisoned all the same. shmem keeps
	 * it too, and answers that it recovered.
	 */
	snprintf(buf, sizeof(buf), "0x%lx", pfn);
	cfd = open(CORRUPT_PFN, O_WRONLY);
	TEST_ASSERT(cfd >= 0, "open(%s): errno %d", CORRUPT_PFN, errno);
	r = write(cfd, buf, strlen(buf));
	TEST_ASSERT(r == (int)strlen(buf) || errno == EBUSY,
		    "%s: injecting at pfn %s: %d, errno %d", what, buf, r, errno);
	close(cfd);
	printf("gmem_hwpoison: %s: poisoned pfn 0x%lx behind gfn 0x%lx\n", what, pfn, gfn);

	/* The other pages are untouched by the error. */
	gmem_run_to_sync(vcpu, STAGE_OTHERS_OK);

	/* The poisoned one fails, as a private memory fault on that page. */
	r = _vcpu_run(vcpu);
	TEST_ASSERT(r == -1 && errno == EHWPOISON,
		    "%s: KVM_RUN on the poisoned page: %d, errno %d (%s)", what, r, errno,
		    strerror(errno));
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(vcpu->run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	TEST_ASSERT_EQ(vcpu->run->memory_fault.gpa, TEST_GPA);
	TEST_ASSERT_EQ(vcpu->run->memory_fault.size, PAGE_SIZE);

	/* Userspace drops the page; the guest gets a fresh one. */
	vm_guest_mem_punch_hole(vm, TEST_GPA, PAGE_SIZE);
	gmem_run_to_sync(vcpu, STAGE_RECOVERED);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);

	kvm_vm_free(vm);
	printf("gmem_hwpoison: %s: EHWPOISON for that gfn only; recovered after a punch\n", what);
}

int main(int argc, char *argv[])
{
	int fd;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_ASSERT(!access(GMEM_SPTE_EVENT "/enable", W_OK),
		    "no kvm_tdp_mmu_spte_changed tracepoint");
	TEST_ASSERT(!access(CORRUPT_PFN, W_OK), "no hwpoison injector");

	run("guest_memfd", -1);

	fd = memfd_create("gmem_hwpoison_test", MFD_INACCESSIBLE);
	TEST_ASSERT(fd >= 0,
		    "memfd_create(MFD_INACCESSIBLE): errno %d (%s); is memfd_inaccessible.ko loaded?",
		    errno, strerror(errno));
	TEST_ASSERT(!ftruncate(fd, TEST_SIZE), "ftruncate: errno %d", errno);
	run("MFD_INACCESSIBLE", fd);
	close(fd);
	return 0;
}
