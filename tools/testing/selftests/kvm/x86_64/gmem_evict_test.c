// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_evict_test: private memory a guest maps is never dropped as cache.
 *
 * A guest writes private memory it faulted in (never fallocated), backed
 * first by a guest_memfd, then by an MFD_INACCESSIBLE memfd. The host then
 * drops the page cache and reuses free memory. The file must still hold
 * every page (Unevictable does not shrink), and the guest must read back
 * exactly what it wrote: a page evicted behind KVM's back would be freed
 * while the guest still maps it.
 *
 * drop_caches evicts every clean page-cache folio with no extra reference
 * on every inode of every superblock's inode list, unevictable mapping or
 * not. A guest_memfd's inode is a pseudo inode on no such list; an
 * MFD_INACCESSIBLE memfd's is an ordinary shmem inode, whose folios a guest
 * faulted in are safe only because the store dirties them. (Soft-offline
 * evicts clean folios of either kind; both backends dirty theirs too, but
 * its sysfs knob needs CONFIG_MEMORY_HOTPLUG, which the test kernel lacks.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
#define NPAGES		512		/* 2 MiB */
#define NPAGES_KB	((long)(NPAGES * PAGE_SIZE / 1024))
#define SLACK_KB	((long)(16 * PAGE_SIZE / 1024))
#define PRESSURE	(256ul << 20)	/* reuses the pages a drop would free */

#define PATTERN(i)	(0x5eed000000000000ul | (i))
#define FIRST(i)	((uint64_t *)(TEST_GPA + (i) * PAGE_SIZE))
#define LAST(i)		((uint64_t *)(TEST_GPA + ((i) + 1) * PAGE_SIZE - 8))

static void guest_code(void)
{
	for (uint64_t i = 0; i < NPAGES; i++) {
		WRITE_ONCE(*FIRST(i), PATTERN(i));
		WRITE_ONCE(*LAST(i), ~PATTERN(i));
	}
	GUEST_SYNC(1);
	for (uint64_t i = 0; i < NPAGES; i++) {
		GUEST_ASSERT_EQ(READ_ONCE(*FIRST(i)), PATTERN(i));
		GUEST_ASSERT_EQ(READ_ONCE(*LAST(i)), ~PATTERN(i));
	}
	GUEST_DONE();
}

static void drop_page_cache(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	TEST_ASSERT(fd >= 0, "open drop_caches: errno %d", errno);
	TEST_ASSERT(write(fd, "3", 1) == 1, "write drop_caches: errno %d", errno);
	close(fd);
}

/* Fill fresh anonymous memory: freed pages get someone else's data. */
static void reuse_free_memory(void)
{
	char *p = mmap(NULL, PRESSURE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	memset(p, 0xa5, PRESSURE);
	munmap(p, PRESSURE);
}

/* A SW_PROTECTED VM whose private memory at TEST_GPA is @fd (-1: a new guest_memfd). */
static void run(const char *what, int fd)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	long base, faulted, dropped;

	base = gmem_unevictable_kb();
	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, NPAGES,
		   KVM_MEM_GUEST_MEMFD, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	vm_mem_set_private(vm, TEST_GPA, NPAGES * PAGE_SIZE);

	gmem_run_to_sync(vcpu, 1);
	faulted = gmem_unevictable_kb();
	TEST_ASSERT(faulted - base >= NPAGES_KB * 9 / 10,
		    "%s: the guest's faults grew Unevictable by %ld kB, wanted about %ld kB",
		    what, faulted - base, NPAGES_KB);

	drop_page_cache();
	dropped = gmem_unevictable_kb();
	reuse_free_memory();
	TEST_ASSERT(faulted - dropped <= SLACK_KB,
		    "%s: drop_caches took %ld kB of private memory the guest maps",
		    what, faulted - dropped);
	gmem_run_to_done(vcpu);

	kvm_vm_free(vm);
	pr_info("%s: guest faulted in %d pages (%ld kB), drop_caches took none, %lu MiB reused, guest read back its data\n",
		what, NPAGES, faulted - base, PRESSURE >> 20);
}

int main(void)
{
	int fd;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));
	gmem_pin_to_this_cpu();

	run("guest_memfd", -1);

	fd = memfd_create("gmem_evict_test", MFD_INACCESSIBLE);
	TEST_ASSERT(fd >= 0,
		    "memfd_create(MFD_INACCESSIBLE): errno %d (%s); is memfd_inaccessible.ko loaded?",
		    errno, strerror(errno));
	TEST_ASSERT(!ftruncate(fd, NPAGES * PAGE_SIZE), "ftruncate: errno %d", errno);
	run("MFD_INACCESSIBLE", fd);
	close(fd);
	pr_info("gmem_evict_test: all cases passed\n");
	return 0;
}
