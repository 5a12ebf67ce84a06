// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_mmap_test: guest_memfd files the VMM can map (GUEST_MEMFD_FLAG_MMAP,
 * GUEST_MEMFD_FLAG_INIT_SHARED, KVM_CAP_GUEST_MEMFD_FLAGS), against
 * whichever backend creates guest_memfds.
 *
 * The flags each VM type accepts, as the capability reports them and as
 * KVM_CREATE_GUEST_MEMFD takes them; then, where the backend supports MMAP:
 * mmap()'s errors, the host's view of a shared file (writes, punch-hole,
 * SIGBUS past the end and on private files, memory errors, THP collapse),
 * the file calls that still fail, and guests whose memslot is the file:
 * a default VM that shares data with the VMM through the mapping, and a
 * software-protected VM that converts the same memory private and back,
 * and a default VM whose whole memory is one guest_memfd.
 * A backend that supports no flag passes the table and skips the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
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

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
#define NPAGES		4
#define SIZE		(NPAGES * PAGE_SIZE)
#define PMD_SIZE	(2ul << 20)
#define TEST_GPA	BIT_ULL(32)
#define TEST_SLOT	10
#define KS		FALLOC_FL_KEEP_SIZE
#define PH		FALLOC_FL_PUNCH_HOLE

/*
 * What 6.12 + this series accepts: MMAP and NO_DIRECT_MAP on every VM (x86
 * can change its direct map), INIT_SHARED and WRITE without private memory.
 */
static uint64_t expected_flags(unsigned long type)
{
	return (type == KVM_X86_SW_PROTECTED_VM ? MMAP :
						  MMAP | SHARED | GUEST_MEMFD_FLAG_WRITE) |
	       GUEST_MEMFD_FLAG_NO_DIRECT_MAP;
}

/* gmem_rs's own flag, listed beside the contract's while it is loaded. */
static uint64_t own_flags(void)
{
	return access("/sys/module/gmem_rs", F_OK) ? 0 : GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD;
}

static sigjmp_buf sigbus_jmp;
static int sigbus_code;

static void sigbus_handler(int sig, siginfo_t *info, void *ctx)
{
	sigbus_code = info->si_code;
	siglongjmp(sigbus_jmp, 1);
}

/*
 * Reads (or writes, if @write) the byte at @p; returns 0, or the si_code of
 * the SIGBUS the access raised.
 */
static int touch(char *p, bool write)
{
	struct sigaction sa = { .sa_sigaction = sigbus_handler, .sa_flags = SA_SIGINFO };
	struct sigaction old;
	int code = 0;

	TEST_ASSERT(!sigaction(SIGBUS, &sa, &old), "sigaction");
	sigbus_code = 0;
	if (!sigsetjmp(sigbus_jmp, 1)) {
		if (write)
			WRITE_ONCE(*p, 0x5a);
		else
			(void)READ_ONCE(*p);
	} else {
		code = sigbus_code;
		TEST_ASSERT(code, "SIGBUS with si_code 0");
	}
	TEST_ASSERT(!sigaction(SIGBUS, &old, NULL), "sigaction");
	return code;
}

static char *map(int fd, size_t len, int flags)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
}

static bool page_is(const char *p, char c)
{
	for (size_t i = 0; i < PAGE_SIZE; i++)
		if (p[i] != c)
			return false;
	return true;
}

static void result(bool ok, const char *what, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ok)
		ksft_test_result_pass("%s\n", what);
	else
		ksft_test_result_fail("%s: %s\n", what, buf);
}

/* The capability per VM type, and each of the 64 bits at creation. */
static void test_flags_table(unsigned long type, uint64_t sys_flags)
{
	struct kvm_vm *vm = vm_create_barebones_type(type);
	uint64_t valid = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	char what[64];
	int bit, bad = -1, fd, e = 0;

	snprintf(what, sizeof(what), "flags table, VM type %lu", type);
	for (bit = 0; bit < 64 && bad < 0; bit++) {
		errno = 0;
		/* A whole 2 MiB: the size gmem_rs's huge flag needs. */
		fd = __vm_create_guest_memfd(vm, PMD_SIZE, BIT_ULL(bit));
		if (fd >= 0)
			close(fd);
		if (valid & BIT_ULL(bit) ? fd < 0 : fd >= 0 || errno != EINVAL) {
			bad = bit;
			e = errno;
		}
	}
	/* A backend with no flags reports none; one with them, the whole contract. */
	if (sys_flags && valid != (expected_flags(type) | own_flags()))
		result(false, what, "capability 0x%lx, want 0x%lx", valid,
		       expected_flags(type) | own_flags());
	else if (sys_flags && sys_flags != (expected_flags(KVM_X86_DEFAULT_VM) | own_flags()))
		result(false, what, "system-wide capability 0x%lx, want 0x%lx", sys_flags,
		       expected_flags(KVM_X86_DEFAULT_VM) | own_flags());
	else if (vm_check_cap(vm, KVM_CAP_GUEST_MEMFD) != 1)
		result(false, what, "KVM_CAP_GUEST_MEMFD %d on this VM, want 1",
		       vm_check_cap(vm, KVM_CAP_GUEST_MEMFD));
	else
		result(bad < 0, what, "bit %d: errno %d against capability 0x%lx", bad, e, valid);
	kvm_vm_free(vm);
}

static void test_mmap_errors(struct kvm_vm *vm)
{
	int plain = vm_create_guest_memfd(vm, SIZE, 0);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p;
	int e;

	errno = 0;
	p = map(plain, SIZE, MAP_SHARED);
	e = errno;
	result(p == MAP_FAILED && e == ENODEV, "mmap without MMAP: ENODEV",
	       "mmap %p errno %d", p, e);
	errno = 0;
	p = map(fd, SIZE, MAP_PRIVATE);
	e = errno;
	result(p == MAP_FAILED && e == EINVAL, "copy-on-write mmap: EINVAL",
	       "mmap %p errno %d", p, e);
	close(plain);
	close(fd);
}

/* Writes through the mapping are the file's; punch-hole gives zeros back. */
static void test_shared_write_punch(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE, MAP_SHARED), *q;
	bool fresh, kept, punched, rewritten;
	int i;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	fresh = page_is(p, 0) && page_is(p + SIZE - PAGE_SIZE, 0);
	for (i = 0; i < NPAGES; i++)
		memset(p + i * PAGE_SIZE, 'a' + i, PAGE_SIZE);
	/* A second mapping sees the same memory. */
	q = map(fd, SIZE, MAP_SHARED);
	TEST_ASSERT(q != MAP_FAILED, "mmap: errno %d", errno);
	kept = true;
	for (i = 0; i < NPAGES; i++)
		kept &= page_is(q + i * PAGE_SIZE, 'a' + i);
	TEST_ASSERT(!fallocate(fd, KS | PH, PAGE_SIZE, PAGE_SIZE), "punch: errno %d", errno);
	punched = page_is(p + PAGE_SIZE, 0) && page_is(q + PAGE_SIZE, 0) &&
		  page_is(p, 'a') && page_is(p + 2 * PAGE_SIZE, 'c');
	memset(q + PAGE_SIZE, 'z', PAGE_SIZE);
	rewritten = page_is(p + PAGE_SIZE, 'z');
	result(fresh && kept && punched && rewritten, "shared file: write, punch, read",
	       "zeroed at first %d, seen by a second mapping %d, punch %d, rewrite %d",
	       fresh, kept, punched, rewritten);
	munmap(p, SIZE);
	munmap(q, SIZE);
	close(fd);
}

/* Past the end of the file, and anywhere in a private file: SIGBUS. */
static void test_sigbus(struct kvm_vm *vm, struct kvm_vm *protected_vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	int priv = vm_create_guest_memfd(vm, SIZE, MMAP);
	int prot = vm_create_guest_memfd(protected_vm, SIZE, MMAP);
	char *p = map(fd, 2 * SIZE, MAP_SHARED);
	char *q = map(priv, SIZE, MAP_SHARED);
	char *r = map(prot, SIZE, MAP_SHARED);
	int in, past, pr, pw, prot_r;

	TEST_ASSERT(p != MAP_FAILED && q != MAP_FAILED && r != MAP_FAILED,
		    "mmap: errno %d", errno);
	in = touch(p + SIZE - 1, true);
	past = touch(p + SIZE, false);
	result(!in && past == BUS_ADRERR, "SIGBUS past the end of the file",
	       "last byte %d, first past %d", in, past);
	pr = touch(q, false);
	pw = touch(q + SIZE - 1, true);
	prot_r = touch(r, false);
	result(pr == BUS_ADRERR && pw == BUS_ADRERR && prot_r == BUS_ADRERR,
	       "SIGBUS on private files (no INIT_SHARED)",
	       "read %d, write %d, software-protected VM's %d", pr, pw, prot_r);
	munmap(p, 2 * SIZE);
	munmap(q, SIZE);
	munmap(r, SIZE);
	close(fd);
	close(priv);
	close(prot);
}

/*
 * read/write and friends still fail (write() with ENODEV: the file has no
 * GUEST_MEMFD_FLAG_WRITE); fstat tells the size and page size.
 */
static void test_file_calls(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char buf[16] = {};
	struct stat st;
	int r, w, pr, pw;

	errno = 0;
	r = read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
	errno = 0;
	w = write(fd, buf, sizeof(buf)) < 0 ? errno : 0;
	errno = 0;
	pr = pread(fd, buf, sizeof(buf), 0) < 0 ? errno : 0;
	errno = 0;
	pw = pwrite(fd, buf, sizeof(buf), 0) < 0 ? errno : 0;
	result(r == EINVAL && w == ENODEV && pr == ESPIPE && pw == ESPIPE,
	       "read/write/pread/pwrite fail", "errnos %d %d %d %d", r, w, pr, pw);
	TEST_ASSERT(!fstat(fd, &st), "fstat: errno %d", errno);
	result(st.st_size == SIZE && st.st_blksize == PAGE_SIZE, "fstat: size and block size",
	       "st_size %ld st_blksize %ld", (long)st.st_size, (long)st.st_blksize);
	close(fd);
}

/* The fallocate contract is the one of files without MMAP, mapped or not. */
static void test_fallocate(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE, MAP_SHARED);
	int past, unaligned, mode, whole, punch;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	past = fallocate(fd, KS, SIZE, PAGE_SIZE) ? errno : 0;
	unaligned = fallocate(fd, KS | PH, 1, PAGE_SIZE) ? errno : 0;
	mode = fallocate(fd, 0, 0, PAGE_SIZE) ? errno : 0;
	whole = fallocate(fd, KS, 0, SIZE) ? errno : 0;
	memset(p, 'f', SIZE);
	punch = fallocate(fd, KS | PH, 0, SIZE + PAGE_SIZE) ? errno : 0;
	result(past == EINVAL && unaligned == EINVAL && mode == EOPNOTSUPP && !whole &&
	       !punch && page_is(p, 0) && page_is(p + SIZE - PAGE_SIZE, 0),
	       "fallocate and punch-hole of a mapped file",
	       "past %d unaligned %d no-keep-size %d whole %d punch %d", past, unaligned,
	       mode, whole, punch);
	munmap(p, SIZE);
	close(fd);
}

/* The THPeligible line of /proc/self/smaps for the mapping at @p; -1 if none. */
static int thp_eligible(void *p)
{
	unsigned long start, end;
	bool in = false;
	char line[256];
	int v = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	TEST_ASSERT(f, "/proc/self/smaps: errno %d", errno);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = start <= (unsigned long)p && (unsigned long)p < end;
		else if (in && sscanf(line, "THPeligible: %d", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

/*
 * THP must not replace the file's folios: the mapping is not THP-eligible
 * (CONFIG_READ_ONLY_THP_FOR_FS would make a read-only file's mapping so),
 * MADV_COLLAPSE fails, and the data stays.
 */
static void test_collapse(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, PMD_SIZE, MMAP | SHARED);
	char *area = mmap(NULL, 2 * PMD_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;
	int huge, collapse, eligible, e = 0;

	TEST_ASSERT(area != MAP_FAILED, "mmap: errno %d", errno);
	p = (char *)(((unsigned long)area + PMD_SIZE - 1) & ~(PMD_SIZE - 1));
	p = mmap(p, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	memset(p, 'h', PMD_SIZE);
	huge = madvise(p, PMD_SIZE, MADV_HUGEPAGE) ? errno : 0;
	eligible = thp_eligible(p);
	collapse = madvise(p, PMD_SIZE, MADV_COLLAPSE);
	if (collapse)
		e = errno;
	result(!huge && !eligible && collapse == -1 && e == EINVAL && page_is(p, 'h') &&
	       page_is(p + PMD_SIZE - PAGE_SIZE, 'h'),
	       "MADV_COLLAPSE refused",
	       "MADV_HUGEPAGE %d, THPeligible %d, MADV_COLLAPSE %d errno %d", huge, eligible,
	       collapse, e);
	munmap(area, 2 * PMD_SIZE);
	close(fd);
}

/*
 * A memory error in a mapped page: the memory-error SIGBUS, for that page
 * only. Punch-hole frees it, but the mapping keeps its poison entry (mm
 * zaps those only with the mapping), so a new mapping reads zeros there.
 */
static void test_hwpoison(struct kvm_vm *vm)
{
	struct sigaction sa = { .sa_sigaction = sigbus_handler, .sa_flags = SA_SIGINFO };
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE, MAP_SHARED);
	struct sigaction old;
	int poisoned, fresh, other;
	char *q;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	memset(p, 'p', SIZE);
	/*
	 * 6.12 signals the poisoning task at once, and fails the madvise
	 * (EBUSY: the folio stays, as guest_memfd leaves recovery to the VMM):
	 * what counts is the next access.
	 */
	TEST_ASSERT(!sigaction(SIGBUS, &sa, &old), "sigaction");
	if (!sigsetjmp(sigbus_jmp, 1))
		(void)madvise(p, PAGE_SIZE, MADV_HWPOISON);
	TEST_ASSERT(!sigaction(SIGBUS, &old, NULL), "sigaction");
	poisoned = touch(p, false);
	other = touch(p + PAGE_SIZE, false);
	/* A new mapping has no poison entry: the file's fault handler finds the poison. */
	q = map(fd, SIZE, MAP_SHARED);
	TEST_ASSERT(q != MAP_FAILED, "mmap: errno %d", errno);
	fresh = touch(q, false);
	munmap(q, SIZE);
	TEST_ASSERT(!fallocate(fd, KS | PH, 0, PAGE_SIZE), "punch: errno %d", errno);
	munmap(p, SIZE);
	p = map(fd, SIZE, MAP_SHARED);
	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	result(poisoned == BUS_MCEERR_AR && fresh == BUS_MCEERR_AR && !other && page_is(p, 0) &&
	       page_is(p + PAGE_SIZE, 'p'),
	       "memory error in a mapped page",
	       "poisoned page si_code %d, in a new mapping %d (want %d), next page %d", poisoned,
	       fresh, BUS_MCEERR_AR, other);
	munmap(p, SIZE);
	close(fd);
}

static uint64_t guest_value;

/* Stage 1: check every page holds guest_value, then write ~guest_value. */
static void guest_code(void)
{
	uint64_t *mem = (uint64_t *)TEST_GPA;
	int i;

	for (i = 0; i < NPAGES; i++)
		GUEST_ASSERT_EQ(READ_ONCE(mem[i * PAGE_SIZE / 8]), guest_value);
	for (i = 0; i < NPAGES; i++)
		WRITE_ONCE(mem[i * PAGE_SIZE / 8], ~guest_value);
	GUEST_SYNC(1);
	/* Stage 2: page 0 was punched by the host: zero again. */
	GUEST_ASSERT_EQ(READ_ONCE(mem[0]), 0);
	GUEST_ASSERT_EQ(READ_ONCE(mem[PAGE_SIZE / 8]), ~guest_value);
	GUEST_DONE();
}

/*
 * A default VM whose memslot is an MMAP | INIT_SHARED file, its host address
 * some other memory: the guest sees what the VMM wrote through the file's
 * mapping, the VMM sees what the guest wrote, the other memory is untouched,
 * and a punch reaches the guest.
 */
static void test_guest_round_trip(void)
{
	const uint64_t value = 0x1122334455667788ull;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE, MAP_SHARED);
	char *other = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool seen = true, untouched = true;
	int i;

	TEST_ASSERT(p != MAP_FAILED && other != MAP_FAILED, "mmap: errno %d", errno);
	memset(other, 0x11, SIZE);
	for (i = 0; i < NPAGES; i++)
		*(uint64_t *)(p + i * PAGE_SIZE) = value;
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, other,
				   fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	guest_value = value;
	sync_global_to_guest(vm, guest_value);

	gmem_run_to_sync(vcpu, 1);
	for (i = 0; i < NPAGES; i++) {
		seen &= *(uint64_t *)(p + i * PAGE_SIZE) == ~value;
		untouched &= page_is(other + i * PAGE_SIZE, 0x11);
	}
	TEST_ASSERT(!fallocate(fd, KS | PH, 0, PAGE_SIZE), "punch: errno %d", errno);
	gmem_run_to_done(vcpu);
	result(seen && untouched, "default VM: guest and VMM share the file",
	       "guest's writes seen %d, host address untouched %d", seen, untouched);
	munmap(p, SIZE);
	munmap(other, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

/*
 * Private, shared, private: the slot is guest_memfd-only, so each state is
 * the same page of the file (no conversion here frees or zeroes it).
 */
static void guest_convert(void)
{
	uint64_t *mem = (uint64_t *)TEST_GPA;
	int i;

	for (i = 0; i < NPAGES; i++)
		WRITE_ONCE(mem[i * PAGE_SIZE / 8], 0x77);
	GUEST_SYNC(1);
	for (i = 0; i < NPAGES; i++) {
		GUEST_ASSERT_EQ(READ_ONCE(mem[i * PAGE_SIZE / 8]), 0x77);
		WRITE_ONCE(mem[i * PAGE_SIZE / 8], 0x78);
	}
	GUEST_SYNC(2);
	for (i = 0; i < NPAGES; i++)
		GUEST_ASSERT_EQ(READ_ONCE(mem[i * PAGE_SIZE / 8]), 0x78);
	GUEST_DONE();
}

/*
 * A software-protected VM on an MMAP file (private: the VMM's accesses get
 * SIGBUS): KVM_SET_MEMORY_ATTRIBUTES still converts its memory, private,
 * shared and private again; the guest finds its data in each state, and
 * the slot's host address, other memory, is never used.
 */
static void test_protected_conversions(void)
{
	const struct vm_shape shape = { .mode = VM_MODE_DEFAULT, .type = KVM_X86_SW_PROTECTED_VM };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = __vm_create_shape_with_one_vcpu(shape, &vcpu, 0, guest_convert);
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP);
	char *p = map(fd, SIZE, MAP_SHARED);
	char *other = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool untouched = true;
	int host, i;

	TEST_ASSERT(p != MAP_FAILED && other != MAP_FAILED, "mmap: errno %d", errno);
	memset(other, 0x11, SIZE);
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, other,
				   fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	vm_mem_set_private(vm, TEST_GPA, SIZE);
	gmem_run_to_sync(vcpu, 1);
	vm_mem_set_shared(vm, TEST_GPA, SIZE);
	gmem_run_to_sync(vcpu, 2);
	vm_mem_set_private(vm, TEST_GPA, SIZE);
	gmem_run_to_done(vcpu);
	host = touch(p, false);
	for (i = 0; i < NPAGES; i++)
		untouched &= page_is(other + i * PAGE_SIZE, 0x11);
	result(host == BUS_ADRERR && untouched,
	       "software-protected VM: conversions of an MMAP file",
	       "host read of the private file: si_code %d; host address untouched %d", host,
	       untouched);
	munmap(p, SIZE);
	munmap(other, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

/* The mapping holds the file: closing the fd frees nothing until munmap. */
static void test_close_while_mapped(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE, MAP_SHARED);
	long before, mapped, after;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	gmem_pin_to_this_cpu();
	before = gmem_unevictable_kb();
	memset(p, 'c', SIZE);
	close(fd);
	memset(p + SIZE - PAGE_SIZE, 'd', PAGE_SIZE);
	mapped = gmem_unevictable_kb();
	result(page_is(p, 'c') && page_is(p + SIZE - PAGE_SIZE, 'd') &&
	       mapped - before >= SIZE / 1024, "closed fd, mapping still in use",
	       "Unevictable grew %ld kB, want %lu", mapped - before, SIZE / 1024);
	munmap(p, SIZE);
	after = gmem_unevictable_kb();
	result(after - before < SIZE / 1024, "munmap of the last user frees the file's memory",
	       "Unevictable %ld kB before, %ld mapped, %ld after", before, mapped, after);
}

static void guest_read_first(void)
{
	GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)TEST_GPA), guest_value);
	GUEST_DONE();
}

/* A file without MMAP leaves the slot as it was: shared faults use its host address. */
static void test_not_gmem_only(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_read_first);
	int fd = vm_create_guest_memfd(vm, SIZE, 0);
	uint64_t *other = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(other != MAP_FAILED, "mmap: errno %d", errno);
	other[0] = 0xabcdef;
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, other,
				   fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	guest_value = 0xabcdef;
	sync_global_to_guest(vm, guest_value);
	gmem_run_to_done(vcpu);
	ksft_test_result_pass("default VM, file without MMAP: the slot's host address\n");
	munmap(other, SIZE);
	close(fd);
	kvm_vm_free(vm);
}

static uint64_t whole_ram_value;

static void guest_whole_ram(void)
{
	GUEST_ASSERT_EQ(READ_ONCE(whole_ram_value), 0x1234);
	WRITE_ONCE(whole_ram_value, 0x5678);
	GUEST_DONE();
}

/*
 * A default VM whose whole memory, code, page tables and stack included, is
 * one MMAP | INIT_SHARED guest_memfd: slot 0 is bound to it, and the
 * library's view of slot 0 is the file's mapping, replacing the anonymous
 * memory vm_mem_add() maps before anything is written there. The guest runs,
 * reads the VMM's write and writes back; a second mapping of the file sees
 * the guest's write at its guest-physical offset.
 */
static void test_whole_ram(void)
{
	const uint64_t npages = 1024, bytes = npages * PAGE_SIZE;
	struct userspace_mem_region *slot0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ____vm_create(VM_SHAPE_DEFAULT);
	int fd = vm_create_guest_memfd(vm, bytes, MMAP | SHARED);
	uint64_t gpa, seen;
	char *view;

	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, 0, 0, npages, KVM_MEM_GUEST_MEMFD, fd, 0);
	slot0 = memslot2region(vm, 0);
	TEST_ASSERT(mmap(slot0->host_mem, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, 0) == slot0->host_mem, "mmap over slot 0: errno %d", errno);
	gmem_vm_finish_create(vm, bytes);
	vcpu = vm_vcpu_add(vm, 0, guest_whole_ram);

	whole_ram_value = 0x1234;
	sync_global_to_guest(vm, whole_ram_value);
	gmem_run_to_done(vcpu);
	sync_global_from_guest(vm, whole_ram_value);
	gpa = addr_gva2gpa(vm, (vm_vaddr_t)&whole_ram_value);
	view = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	TEST_ASSERT(view != MAP_FAILED, "mmap: errno %d", errno);
	seen = *(uint64_t *)(view + gpa);
	result(whole_ram_value == 0x5678 && seen == 0x5678,
	       "default VM with all its memory in one guest_memfd",
	       "guest wrote 0x%lx, the file holds 0x%lx at gpa 0x%lx", whole_ram_value, seen,
	       gpa);
	munmap(view, bytes);
	close(fd);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	struct kvm_vm *vm, *protected_vm;
	uint64_t sys_flags;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	sys_flags = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);

	ksft_print_header();
	ksft_set_plan(sys_flags & MMAP ? 18 : 2);
	test_flags_table(VM_TYPE_DEFAULT, sys_flags);
	test_flags_table(KVM_X86_SW_PROTECTED_VM, sys_flags);
	if (!(sys_flags & MMAP))
		ksft_exit_skip("the backend supports no GUEST_MEMFD_FLAG_MMAP (flags 0x%lx)\n",
			       sys_flags);

	vm = vm_create_barebones();
	protected_vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	test_mmap_errors(vm);
	test_shared_write_punch(vm);
	test_sigbus(vm, protected_vm);
	test_file_calls(vm);
	test_fallocate(vm);
	test_collapse(vm);
	test_hwpoison(vm);
	test_close_while_mapped(vm);
	kvm_vm_free(protected_vm);
	kvm_vm_free(vm);
	test_guest_round_trip();
	test_protected_conversions();
	test_whole_ram();
	test_not_gmem_only();
	ksft_finished();
}
