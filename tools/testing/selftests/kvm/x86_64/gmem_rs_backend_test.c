// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_rs_backend_test: the gmem_rs module as a guest_memfd backend.
 *
 * - every file and every memslot binding of the module holds a module
 *   reference, and drops it when closed or unbound;
 * - unloading fails while a file exists, and works once it is closed;
 * - files of either backend keep working while the module is loaded and
 *   unloaded: each file stays with the backend that created it.
 *
 * Needs the module's path in GMEM_RS_KO.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define GMEM_SIZE	(16 * PAGE_SIZE)
#define SLOT_GPA(slot)	(0x100000000ull + (slot) * GMEM_SIZE)

static const char *module_path;

static bool module_loaded(void)
{
	return !access("/sys/module/gmem_rs", F_OK);
}

static long module_refcnt(void)
{
	FILE *f = fopen("/sys/module/gmem_rs/refcnt", "r");
	long n = -1;

	TEST_ASSERT(f, "gmem_rs is not loaded");
	TEST_ASSERT_EQ(fscanf(f, "%ld", &n), 1);
	fclose(f);
	return n;
}

static void load_module(void)
{
	int fd;

	if (module_loaded())
		return;
	fd = open(module_path, O_RDONLY | O_CLOEXEC);
	TEST_ASSERT(fd >= 0, "open(%s) failed, errno %d", module_path, errno);
	TEST_ASSERT(!syscall(SYS_finit_module, fd, "", 0),
		    "finit_module(%s) failed, errno %d", module_path, errno);
	close(fd);
	TEST_ASSERT(module_loaded(), "gmem_rs did not load");
}

static int unload_module(void)
{
	return syscall(SYS_delete_module, "gmem_rs", O_NONBLOCK);
}

static struct kvm_vm *protected_vm(void)
{
	return vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
}

static void *shared_mem(void)
{
	void *mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(mem != MAP_FAILED, "mmap failed");
	return mem;
}

static void bind_slot(struct kvm_vm *vm, int slot, int fd, void *mem)
{
	vm_set_user_memory_region2(vm, slot, KVM_MEM_GUEST_MEMFD, SLOT_GPA(slot),
				   GMEM_SIZE, mem, fd, 0);
}

static void delete_slot(struct kvm_vm *vm, int slot)
{
	vm_set_user_memory_region2(vm, slot, KVM_MEM_GUEST_MEMFD, SLOT_GPA(slot),
				   0, NULL, 0, 0);
}

static void check_fallocate(int fd)
{
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, GMEM_SIZE),
		    "fallocate failed, errno %d", errno);
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			       PAGE_SIZE, PAGE_SIZE),
		    "punch hole failed, errno %d", errno);
}

/* A file and a binding each pin the module; closing and unbinding unpin it. */
static void test_module_references(void)
{
	struct kvm_vm *vm;
	void *mem = shared_mem();
	long base;
	int fd;

	load_module();
	vm = protected_vm();
	base = module_refcnt();

	fd = vm_create_guest_memfd(vm, GMEM_SIZE, 0);
	TEST_ASSERT_EQ(module_refcnt(), base + 1);
	bind_slot(vm, 1, fd, mem);
	TEST_ASSERT_EQ(module_refcnt(), base + 2);
	delete_slot(vm, 1);
	TEST_ASSERT_EQ(module_refcnt(), base + 1);

	/* A binding outlives its file's fd until the memslot goes. */
	bind_slot(vm, 1, fd, mem);
	close(fd);
	TEST_ASSERT_EQ(module_refcnt(), base + 1);
	delete_slot(vm, 1);
	TEST_ASSERT_EQ(module_refcnt(), base);

	kvm_vm_free(vm);
	munmap(mem, GMEM_SIZE);
	ksft_test_result_pass("module references follow files and bindings\n");
}

/* rmmod is refused while a file exists, and loses nothing. */
static void test_unload_busy(void)
{
	struct kvm_vm *vm;
	int fd, r, busy_errno;

	load_module();
	vm = protected_vm();
	fd = vm_create_guest_memfd(vm, GMEM_SIZE, 0);

	r = unload_module();
	busy_errno = errno;
	TEST_ASSERT(r == -1 && (busy_errno == EWOULDBLOCK || busy_errno == EBUSY),
		    "delete_module of a module in use: %d, errno %d", r, busy_errno);
	TEST_ASSERT(module_loaded(), "gmem_rs went away while in use");
	check_fallocate(fd);

	close(fd);
	TEST_ASSERT(!unload_module(), "delete_module after close: errno %d", errno);
	TEST_ASSERT(!module_loaded(), "gmem_rs still loaded");

	load_module();
	kvm_vm_free(vm);
	ksft_test_result_pass("unload refused while in use (errno %s), clean after\n",
			      busy_errno == EBUSY ? "EBUSY" : "EWOULDBLOCK");
}

/* Each file stays with the backend that created it. */
static void test_files_survive(void)
{
	void *mem1 = shared_mem(), *mem2 = shared_mem(), *mem3 = shared_mem();
	struct kvm_vm *vm;
	int c_fd, rs_fd;

	if (module_loaded())
		TEST_ASSERT(!unload_module(), "gmem_rs would not unload, errno %d", errno);

	vm = protected_vm();
	c_fd = vm_create_guest_memfd(vm, GMEM_SIZE, 0);

	load_module();
	TEST_ASSERT_EQ(module_refcnt(), 0);
	rs_fd = vm_create_guest_memfd(vm, GMEM_SIZE, 0);
	TEST_ASSERT_EQ(module_refcnt(), 1);

	/* Both work side by side; the built-in file does not pin the module. */
	check_fallocate(c_fd);
	check_fallocate(rs_fd);
	bind_slot(vm, 1, c_fd, mem1);
	bind_slot(vm, 2, rs_fd, mem2);
	TEST_ASSERT_EQ(module_refcnt(), 2);

	delete_slot(vm, 2);
	close(rs_fd);
	TEST_ASSERT(!unload_module(), "delete_module: errno %d", errno);

	/* The built-in file is unaffected by the module going away... */
	check_fallocate(c_fd);
	delete_slot(vm, 1);
	bind_slot(vm, 1, c_fd, mem1);

	/* ...or coming back: it is still served by KVM, not the module. */
	load_module();
	check_fallocate(c_fd);
	delete_slot(vm, 1);
	bind_slot(vm, 3, c_fd, mem3);
	TEST_ASSERT_EQ(module_refcnt(), 0);

	kvm_vm_free(vm);
	close(c_fd);
	munmap(mem1, GMEM_SIZE);
	munmap(mem2, GMEM_SIZE);
	munmap(mem3, GMEM_SIZE);
	ksft_test_result_pass("files of both backends survive a load and an unload\n");
}

int main(int argc, char *argv[])
{
	bool was_loaded = module_loaded();

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	module_path = getenv("GMEM_RS_KO");
	TEST_ASSERT(module_path, "set GMEM_RS_KO to the path of gmem_rs.ko");

	ksft_print_header();
	ksft_set_plan(3);
	test_module_references();
	test_unload_busy();
	test_files_survive();

	/* Leave the module as we found it. */
	if (!was_loaded && module_loaded())
		TEST_ASSERT(!unload_module(), "delete_module: errno %d", errno);
	ksft_finished();
}
