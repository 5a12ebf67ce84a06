// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_errno_test: 6.12's guest_memfd errno contract, as a table.
 *
 * Each row is one bad (or edge) input and the errno 6.12's built-in
 * guest_memfd gives it (creation flags: EINVAL unless the VM's
 * KVM_CAP_GUEST_MEMFD_FLAGS lists them), but write(): ENODEV on a file
 * without GUEST_MEMFD_FLAG_WRITE, where 6.12 has EINVAL; the table runs
 * against whichever backend creates guest_memfds
 * (Documentation/virt/kvm/gmem_rs.rst has the same table).
 * Bad input must also change nothing: after the table, the file still has
 * its size and still allocates and binds.
 *
 * Then the capability is read as a VMM reads it (and as mainline's
 * guest_memfd_test does): on each VM type, every flag that
 * KVM_CAP_GUEST_MEMFD_FLAGS lists must work alone, at every valid size (one
 * page, a few pages, 2 MiB and a page), and every other bit be EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>
#include <linux/memfd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define SIZE	(4 * PAGE_SIZE)
#define GPA	BIT_ULL(32)

static struct kvm_vm *vm, *other_vm;
static int gmem, other_gmem, memfd;
static void *mem;

static int create(uint64_t size, uint64_t flags)
{
	return __vm_create_guest_memfd(vm, size, flags);
}

/* A creation that succeeds gives an fd: closed, and reported as 0. */
static int created(int fd)
{
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int bind(uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		int fd, uint64_t offset)
{
	return __vm_set_user_memory_region2(vm, slot, flags | KVM_MEM_GUEST_MEMFD,
					    gpa, size, mem, fd, offset);
}

static int falloc(int mode, off_t off, off_t len)
{
	return fallocate(gmem, mode, off, len);
}

struct row {
	const char *what;
	int (*op)(void);
	int err;	/* 0: must succeed */
	uint64_t flag;	/* a GUEST_MEMFD_FLAG_*: succeeds if the VM's capability has it */
};

/* One operation of the table; its expected errno is in rows[] below. */
#define OP(name, expr)	static int op_##name(void) { return (expr); }
#define KS FALLOC_FL_KEEP_SIZE
#define PH FALLOC_FL_PUNCH_HOLE

/* Creation. */
OP(size_zero, create(0, 0))
OP(size_unaligned, create(PAGE_SIZE + 1, 0))
OP(size_sub_page, create(PAGE_SIZE - 1, 0))
OP(size_negative, create(-PAGE_SIZE, 0))
OP(flags_bit0, created(create(SIZE, 1ull << 0)))
OP(flags_bit1, created(create(SIZE, 1ull << 1)))
OP(flags_bit2, created(create(SIZE, 1ull << 2)))
#define NDM GUEST_MEMFD_FLAG_NO_DIRECT_MAP
OP(flags_no_direct_map_init_shared, created(create(SIZE, NDM | GUEST_MEMFD_FLAG_INIT_SHARED)))
OP(flags_huge_no_direct_map, created(create(2ul << 20, GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD | NDM)))
OP(flags_bit3, created(create(SIZE, 1ull << 3)))
#define WR GUEST_MEMFD_FLAG_WRITE
OP(flags_write_mmap_init_shared, created(create(SIZE, WR | GUEST_MEMFD_FLAG_MMAP |
						   GUEST_MEMFD_FLAG_INIT_SHARED)))
OP(flags_huge_write, created(create(2ul << 20, GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD | WR)))
OP(flags_bit63, created(create(SIZE, 1ull << 63)))
/* File operations. */
OP(read, ({ char b[8]; (int)read(gmem, b, sizeof(b)); }))
OP(write, ({ char b[8] = {}; (int)write(gmem, b, sizeof(b)); }))
OP(pread, ({ char b[8]; (int)pread(gmem, b, sizeof(b), 0); }))
OP(pwrite, ({ char b[8] = {}; (int)pwrite(gmem, b, sizeof(b), 0); }))
OP(lseek, (int)lseek(gmem, 0, SEEK_SET))
OP(mmap, mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, gmem, 0) == MAP_FAILED ? -1 : 0)
OP(ftruncate, ftruncate(gmem, 2 * SIZE))
OP(ftruncate_same, ftruncate(gmem, SIZE))
OP(fchmod, fchmod(gmem, 0600))
/* fallocate. */
OP(falloc_no_keep_size, falloc(0, 0, PAGE_SIZE))
OP(falloc_punch_no_keep_size, falloc(PH, 0, PAGE_SIZE))
OP(falloc_zero_range, falloc(KS | FALLOC_FL_ZERO_RANGE, 0, PAGE_SIZE))
OP(falloc_collapse, falloc(FALLOC_FL_COLLAPSE_RANGE, 0, PAGE_SIZE))
OP(falloc_insert, falloc(FALLOC_FL_INSERT_RANGE, 0, PAGE_SIZE))
OP(falloc_unaligned_off, falloc(KS, 1, PAGE_SIZE))
OP(falloc_unaligned_len, falloc(KS, 0, PAGE_SIZE - 1))
OP(falloc_punch_unaligned_off, falloc(KS | PH, PAGE_SIZE / 2, PAGE_SIZE))
OP(falloc_punch_unaligned_len, falloc(KS | PH, 0, PAGE_SIZE + 1))
OP(falloc_negative_off, falloc(KS, -PAGE_SIZE, PAGE_SIZE))
OP(falloc_zero_len, falloc(KS, 0, 0))
OP(falloc_past_size, falloc(KS, SIZE, PAGE_SIZE))
OP(falloc_straddle_size, falloc(KS, SIZE - PAGE_SIZE, 2 * PAGE_SIZE))
OP(falloc_punch_past_size, falloc(KS | PH, SIZE, PAGE_SIZE))
OP(falloc_whole, falloc(KS, 0, SIZE))
OP(falloc_punch_whole, falloc(KS | PH, 0, SIZE))
/* Binding a memslot. */
OP(bind_bad_fd, bind(1, 0, GPA, SIZE, -1, 0))
OP(bind_kvm_fd, bind(1, 0, GPA, SIZE, vm->kvm_fd, 0))
OP(bind_vm_fd, bind(1, 0, GPA, SIZE, vm->fd, 0))
OP(bind_memfd, bind(1, 0, GPA, SIZE, memfd, 0))
OP(bind_other_vm, bind(1, 0, GPA, SIZE, other_gmem, 0))
OP(bind_unaligned_offset, bind(1, 0, GPA, SIZE - PAGE_SIZE, gmem, 1))
OP(bind_past_size, bind(1, 0, GPA, SIZE, gmem, PAGE_SIZE))
OP(bind_too_big, bind(1, 0, GPA, 2 * SIZE, gmem, 0))
OP(bind_log_dirty, bind(1, KVM_MEM_LOG_DIRTY_PAGES, GPA, SIZE, gmem, 0))
OP(bind_readonly, bind(1, KVM_MEM_READONLY, GPA, SIZE, gmem, 0))
OP(bind_first_half, bind(1, 0, GPA, SIZE / 2, gmem, 0))
OP(bind_overlap, bind(2, 0, GPA + SIZE, SIZE / 2, gmem, PAGE_SIZE))
OP(bind_second_half, bind(2, 0, GPA + SIZE, SIZE / 2, gmem, SIZE / 2))

#define R(name, err) { #name, op_##name, err }
#define RF(name, flag) { #name, op_##name, EINVAL, flag }
static const struct row rows[] = {
	R(size_zero, EINVAL), R(size_unaligned, EINVAL), R(size_sub_page, EINVAL),
	R(size_negative, EINVAL), RF(flags_bit0, GUEST_MEMFD_FLAG_MMAP),
	RF(flags_bit1, GUEST_MEMFD_FLAG_INIT_SHARED),
	RF(flags_bit2, GUEST_MEMFD_FLAG_NO_DIRECT_MAP),
	RF(flags_no_direct_map_init_shared, NDM | GUEST_MEMFD_FLAG_INIT_SHARED),
	RF(flags_huge_no_direct_map, GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD | NDM),
	RF(flags_bit3, GUEST_MEMFD_FLAG_WRITE),
	RF(flags_write_mmap_init_shared,
	   WR | GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED),
	RF(flags_huge_write, GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD | WR),
	R(flags_bit63, EINVAL),
	R(read, EINVAL), R(write, ENODEV), R(pread, ESPIPE), R(pwrite, ESPIPE),
	R(lseek, ESPIPE), R(mmap, ENODEV), R(ftruncate, EINVAL),
	R(ftruncate_same, EINVAL), R(fchmod, EINVAL),
	R(falloc_no_keep_size, EOPNOTSUPP), R(falloc_punch_no_keep_size, EOPNOTSUPP),
	R(falloc_zero_range, EOPNOTSUPP), R(falloc_collapse, EOPNOTSUPP),
	R(falloc_insert, EOPNOTSUPP), R(falloc_unaligned_off, EINVAL),
	R(falloc_unaligned_len, EINVAL), R(falloc_punch_unaligned_off, EINVAL),
	R(falloc_punch_unaligned_len, EINVAL), R(falloc_negative_off, EINVAL),
	R(falloc_zero_len, EINVAL), R(falloc_past_size, EINVAL),
	R(falloc_straddle_size, EINVAL), R(falloc_punch_past_size, 0),
	R(falloc_whole, 0), R(falloc_punch_whole, 0),
	R(bind_bad_fd, EBADF), R(bind_kvm_fd, EINVAL), R(bind_vm_fd, EINVAL),
	R(bind_memfd, EINVAL), R(bind_other_vm, EINVAL),
	R(bind_unaligned_offset, EINVAL), R(bind_past_size, EINVAL),
	R(bind_too_big, EINVAL), R(bind_log_dirty, EINVAL), R(bind_readonly, EINVAL),
	R(bind_first_half, 0), R(bind_overlap, EINVAL), R(bind_second_half, 0),
};

/* Sizes a VMM may ask for: any whole number of pages. */
static const uint64_t flag_loop_sizes[] = {
	PAGE_SIZE, 3 * PAGE_SIZE, (2ul << 20) + PAGE_SIZE,
};

static void test_flag_loop(unsigned long type, const char *name)
{
	struct kvm_vm *v = vm_create_barebones_type(type);
	uint64_t valid = vm_check_cap(v, KVM_CAP_GUEST_MEMFD_FLAGS);
	uint64_t flag, size, bad = 0, bad_size = 0;
	unsigned int i;
	int fd, e;

	for (i = 0; i < ARRAY_SIZE(flag_loop_sizes); i++) {
		size = flag_loop_sizes[i];
		for (flag = 1; flag; flag <<= 1) {
			errno = 0;
			fd = __vm_create_guest_memfd(v, size, flag);
			e = errno;
			if (fd >= 0)
				close(fd);
			if (flag & valid ? fd >= 0 : fd < 0 && e == EINVAL)
				continue;
			if (!bad) {
				bad = flag;
				bad_size = size;
				ksft_print_msg("%s VM: flag %#lx at %lu bytes: fd %d, errno %d\n",
					       name, flag, size, fd, e);
			}
		}
	}
	if (!bad)
		ksft_test_result_pass("%s VM: each flag of %#lx alone, %zu sizes; others EINVAL\n",
				      name, valid, ARRAY_SIZE(flag_loop_sizes));
	else
		ksft_test_result_fail("%s VM: flag %#lx at %lu bytes (listed: %#lx)\n", name, bad,
				      bad_size, valid);
	kvm_vm_free(v);
}

int main(int argc, char *argv[])
{
	uint64_t valid;
	struct stat st;
	unsigned int i;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	other_vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	gmem = vm_create_guest_memfd(vm, SIZE, 0);
	other_gmem = vm_create_guest_memfd(other_vm, SIZE, 0);
	memfd = memfd_create("gmem_errno_test", 0);
	TEST_ASSERT(memfd >= 0 && !ftruncate(memfd, SIZE), "memfd");
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap");

	/* The flags rows follow KVM_CAP_GUEST_MEMFD_FLAGS (gmem_mmap_test checks its value). */
	valid = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(rows) + 3);
	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		/* A row of flags succeeds where the VM takes all of them. */
		int want = rows[i].flag && (rows[i].flag & valid) == rows[i].flag ? 0 : rows[i].err;
		int r, e;

		errno = 0;
		r = rows[i].op();
		e = errno;
		if (want ? (r == -1 && e == want) : r == 0)
			ksft_test_result_pass("%s: %s\n", rows[i].what,
					      want ? strerror(want) : "ok");
		else
			ksft_test_result_fail("%s: got %d, errno %d (%s); want %s\n",
					      rows[i].what, r, e, strerror(e),
					      want ? strerror(want) : "success");
	}

	/* Nothing above changed the file: same size, still allocates. */
	TEST_ASSERT(!fstat(gmem, &st), "fstat");
	if (st.st_size == SIZE && st.st_blksize == PAGE_SIZE && !falloc(KS, 0, SIZE))
		ksft_test_result_pass("the file is unchanged by bad input\n");
	else
		ksft_test_result_fail("st_size %ld, st_blksize %ld after the table\n",
				      (long)st.st_size, (long)st.st_blksize);

	kvm_vm_free(other_vm);
	kvm_vm_free(vm);

	test_flag_loop(KVM_X86_DEFAULT_VM, "default");
	test_flag_loop(KVM_X86_SW_PROTECTED_VM, "software-protected");
	ksft_finished();
}
