// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_memory_test: guest_memfd memory goes back to the system.
 *
 * guest_memfd pages are unevictable, so /proc/meminfo's Unevictable counts
 * them: it must grow by what fallocate allocates, shrink by what a punched
 * hole frees, and return to where it was when the file is closed, with or
 * without a memslot bound to it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "test_util.h"

#define GMEM_SIZE	(64ul << 20)
#define SLACK_KB	(2ul << 10)	/* folios still in per-CPU LRU batches */

static void expect_near(long got, long want, const char *what)
{
	TEST_ASSERT(got >= want - (long)SLACK_KB && got <= want + (long)SLACK_KB,
		    "%s: Unevictable is %ld kB, expected about %ld kB", what, got, want);
}

static void run(bool bound)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	long base, size_kb = GMEM_SIZE >> 10;
	void *mem = NULL;
	int fd;

	base = gmem_unevictable_kb();
	fd = vm_create_guest_memfd(vm, GMEM_SIZE, 0);
	if (bound) {
		mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(mem != MAP_FAILED, "mmap failed");
		vm_set_user_memory_region2(vm, 1, KVM_MEM_GUEST_MEMFD, 1ull << 32,
					   GMEM_SIZE, mem, fd, 0);
	}

	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, GMEM_SIZE),
		    "fallocate failed, errno %d", errno);
	expect_near(gmem_unevictable_kb(), base + size_kb, "after fallocate");

	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       0, GMEM_SIZE / 2), "punch hole failed, errno %d", errno);
	expect_near(gmem_unevictable_kb(), base + size_kb / 2, "after punching half");

	close(fd);
	expect_near(gmem_unevictable_kb(), base, "after close");

	kvm_vm_free(vm);
	if (mem)
		munmap(mem, GMEM_SIZE);
	ksft_test_result_pass("memory returned after close (%s)\n",
			      bound ? "bound to a memslot" : "unbound");
}

int main(int argc, char *argv[])
{
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));

	ksft_print_header();
	ksft_set_plan(2);
	run(false);
	run(true);
	ksft_finished();
}
