// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_write_test: GUEST_MEMFD_FLAG_WRITE, against whichever backend
 * creates guest_memfds.
 *
 * The capability lists the flag where INIT_SHARED is (VMs without private
 * memory), and it creates alone and with every other flag. write() and
 * pwrite() of such a file fill whole pages of its shared memory, allocated
 * on demand, and return the bytes written; anything else gets its errno and
 * changes nothing: EINVAL for a range that is not whole pages inside the
 * file or an append (the size is fixed), EACCES for private memory (no
 * INIT_SHARED), EFAULT for a bad source, EHWPOISON for a poisoned page;
 * ENODEV without the flag, where lseek() and pwrite() fail as in 6.12
 * (ESPIPE). read() stays refused. The source may be
 * a mapping of the same file. With NO_DIRECT_MAP, a written page leaves the
 * direct map, and a page already out is overwritten without it. gmem_rs's
 * 2 MiB folios take writes a page at a time. A guest reads what the VMM
 * wrote.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
#define NDM		GUEST_MEMFD_FLAG_NO_DIRECT_MAP
#define WR		GUEST_MEMFD_FLAG_WRITE
#define HUGE		GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD
#define NPAGES		4
#define SIZE		(NPAGES * PAGE_SIZE)
#define TEST_GPA	0xc0000000ul
#define TEST_SLOT	10
#define KS		FALLOC_FL_KEEP_SIZE
#define PH		FALLOC_FL_PUNCH_HOLE

static int probe_dev;
static char src[2 * SIZE] __aligned(4096);

static int create(struct kvm_vm *vm, uint64_t size, uint64_t flags)
{
	int fd = __vm_create_guest_memfd(vm, size, flags);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static char *map(int fd)
{
	char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	return p;
}

/* -errno, or what the call returned. */
static long ret(long r)
{
	return r < 0 ? -errno : r;
}

static void fill(char *buf, size_t len, int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed + i * 7 + i / PAGE_SIZE);
}

/*
 * Listed with INIT_SHARED: on a default VM and system-wide, alone and with
 * each other flag; not on a VM with private memory, where it is EINVAL.
 */
static void test_flags(void)
{
	static const uint64_t others[] = {
		0, MMAP, SHARED, MMAP | SHARED, NDM, MMAP | SHARED | NDM,
	};
	struct kvm_vm *vm = vm_create_barebones();
	struct kvm_vm *pvm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	uint64_t valid = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	uint64_t pvalid = vm_check_cap(pvm, KVM_CAP_GUEST_MEMFD_FLAGS);
	uint64_t sys = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	int i, bad = -1, r = 0, huge = 0, private = create(pvm, PAGE_SIZE, WR);

	for (i = 0; i < ARRAY_SIZE(others) && bad < 0; i++) {
		if ((others[i] & valid) != others[i])
			continue;
		r = create(vm, PAGE_SIZE, others[i] | WR);
		if (r)
			bad = i;
	}
	if (valid & HUGE)
		huge = create(vm, 2ul << 20, HUGE | WR);
	if ((valid & (WR | SHARED)) == (WR | SHARED) && (sys & WR) && !(pvalid & WR) &&
	    private == -EINVAL && bad < 0 && !huge)
		ksft_test_result_pass("listed with INIT_SHARED (%#lx; %#lx; none on %#lx)\n",
				      valid, sys, pvalid);
	else
		ksft_test_result_fail("default %#lx, sys %#lx, private %#lx (%d); %#lx: %d; %d\n",
				      valid, sys, pvalid, private, bad < 0 ? 0 : others[bad], r,
				      huge);
	kvm_vm_free(pvm);
	kvm_vm_free(vm);
}

#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

/* write() of a page with O_APPEND set on @fd for it. */
static long write_appending(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	long r;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_APPEND))
		return -1000;
	r = ret(write(fd, src, PAGE_SIZE));
	if (fcntl(fd, F_SETFL, fl))
		return -1000;
	return r;
}

/* The errno of each bad call, and that none of them changed the file. */
static void test_errno(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED | WR);
	int plain = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	int private = vm_create_guest_memfd(vm, SIZE, MMAP | WR);
	/* A readable page, then one that is not. */
	char *bad = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int prot = bad == MAP_FAILED ? -1 : mprotect(bad + PAGE_SIZE, PAGE_SIZE, PROT_NONE);
	struct iovec iov = { .iov_base = src, .iov_len = PAGE_SIZE };
	struct {
		const char *what;
		long got, want;
	} rows[] = {
		{ "pwrite unaligned offset", ret(pwrite(fd, src, PAGE_SIZE, 1)), -EINVAL },
		{ "pwrite unaligned length", ret(pwrite(fd, src, 100, 0)), -EINVAL },
		{ "pwrite a page and a byte", ret(pwrite(fd, src, PAGE_SIZE + 1, 0)), -EINVAL },
		{ "pwrite past the end", ret(pwrite(fd, src, PAGE_SIZE, SIZE)), -EINVAL },
		{ "pwrite across the end", ret(pwrite(fd, src, 2 * PAGE_SIZE, SIZE - PAGE_SIZE)),
		  -EINVAL },
		{ "pwrite a bad source", ret(pwrite(fd, bad + PAGE_SIZE, PAGE_SIZE, 0)), -EFAULT },
		{ "pwrite, bad mid-page", ret(pwrite(fd, bad + PAGE_SIZE / 2, PAGE_SIZE, 0)),
		  -EFAULT },
		{ "pwrite nothing", ret(pwrite(fd, src, 0, 0)), 0 },
		{ "pwritev2 RWF_APPEND", ret(pwritev2(fd, &iov, 1, 0, RWF_APPEND)),
		  -EINVAL },
		{ "write with O_APPEND", write_appending(fd), -EINVAL },
		{ "read", ret(read(fd, src, PAGE_SIZE)), -EINVAL },
		{ "pread", ret(pread(fd, src, PAGE_SIZE, 0)), -ESPIPE },
		{ "lseek to the end", ret(lseek(fd, 0, SEEK_END)), SIZE },
		{ "lseek back", ret(lseek(fd, 0, SEEK_SET)), 0 },
		{ "private: pwrite", ret(pwrite(private, src, PAGE_SIZE, 0)), -EACCES },
		{ "private: write", ret(write(private, src, PAGE_SIZE)), -EACCES },
		{ "no WRITE: write", ret(write(plain, src, PAGE_SIZE)), -ENODEV },
		{ "no WRITE: pwrite", ret(pwrite(plain, src, PAGE_SIZE, 0)), -ESPIPE },
		{ "no WRITE: lseek", ret(lseek(plain, 0, SEEK_SET)), -ESPIPE },
	};
	int i, wrong = 0, allocated = 0;

	TEST_ASSERT(!prot, "mmap or mprotect of the bad source failed");
	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		if (rows[i].got == rows[i].want)
			continue;
		ksft_print_msg("%s: %ld, want %ld\n", rows[i].what, rows[i].got, rows[i].want);
		wrong++;
	}
	/* Nothing was allocated by the calls that failed. */
	for (i = 0; i < NPAGES; i++) {
		allocated += gmem_probe(probe_dev, fd, i * PAGE_SIZE, NULL) != -ENOENT;
		allocated += gmem_probe(probe_dev, private, i * PAGE_SIZE, NULL) != -ENOENT;
		allocated += gmem_probe(probe_dev, plain, i * PAGE_SIZE, NULL) != -ENOENT;
	}
	if (!wrong && !allocated)
		ksft_test_result_pass("errno of %zu calls; no page allocated by them\n",
				      ARRAY_SIZE(rows));
	else
		ksft_test_result_fail("%d calls wrong, %d pages allocated\n", wrong, allocated);
	munmap(bad, 2 * PAGE_SIZE);
	close(fd);
	close(plain);
	close(private);
}

/*
 * Whole pages, allocated on demand, seen through the mapping; write()
 * advances the position; a page in use is overwritten; the source may be
 * the file's own mapping, even the page written; a write that reaches a
 * source page it cannot read stops there; a punched page is written again.
 */
static void test_data(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED | WR);
	char *p = map(fd), *bad;
	static char want[SIZE];
	long w1, w2, w3, w4, w5, w6, pos;
	int before, after, ok = 1;

	fill(src, sizeof(src), 1);
	before = gmem_probe(probe_dev, fd, PAGE_SIZE, NULL);
	w1 = ret(write(fd, src, PAGE_SIZE));
	pos = ret(lseek(fd, 0, SEEK_CUR));
	after = gmem_probe(probe_dev, fd, PAGE_SIZE, NULL);
	w2 = ret(pwrite(fd, src + PAGE_SIZE, 2 * PAGE_SIZE, 2 * PAGE_SIZE));
	memcpy(want, src, PAGE_SIZE);
	memcpy(want + 2 * PAGE_SIZE, src + PAGE_SIZE, 2 * PAGE_SIZE);
	/* Page 1 was never written: not allocated. */
	ok &= before == -ENOENT && after == -ENOENT;
	ok &= !memcmp(p, want, PAGE_SIZE) && !memcmp(p + 2 * PAGE_SIZE, want + 2 * PAGE_SIZE,
						      2 * PAGE_SIZE);

	/* Overwrite page 0, which the mapping maps. */
	fill(src, PAGE_SIZE, 9);
	w3 = ret(pwrite(fd, src, PAGE_SIZE, 0));
	memcpy(want, src, PAGE_SIZE);
	ok &= !memcmp(p, want, PAGE_SIZE);

	/*
	 * From the file's own mapping, its page tables dropped so that the
	 * write faults the source in: page 0 into page 1 (not yet allocated),
	 * then page 0 and page 2 onto themselves.
	 */
	TEST_ASSERT(!madvise(p, SIZE, MADV_DONTNEED), "madvise: errno %d", errno);
	w4 = ret(pwrite(fd, p, PAGE_SIZE, PAGE_SIZE));
	TEST_ASSERT(!madvise(p, SIZE, MADV_DONTNEED), "madvise: errno %d", errno);
	w4 += ret(pwrite(fd, p, PAGE_SIZE, 0));
	w4 += ret(pwrite(fd, p + 2 * PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE));
	memcpy(want + PAGE_SIZE, want, PAGE_SIZE);
	ok &= !memcmp(p, want, 3 * PAGE_SIZE);

	/* Pages 2 and 3 from a source whose second page cannot be read: page 2 only. */
	bad = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	TEST_ASSERT(bad != MAP_FAILED && !mprotect(bad + PAGE_SIZE, PAGE_SIZE, PROT_NONE),
		    "mmap, mprotect: errno %d", errno);
	memset(bad, 0x77, PAGE_SIZE);
	w5 = ret(pwrite(fd, bad, 2 * PAGE_SIZE, 2 * PAGE_SIZE));
	memset(want + 2 * PAGE_SIZE, 0x77, PAGE_SIZE);
	ok &= !memcmp(p, want, SIZE);
	munmap(bad, 2 * PAGE_SIZE);

	/* A punched page reads zero, then holds what is written again. */
	TEST_ASSERT(!fallocate(fd, KS | PH, 3 * PAGE_SIZE, PAGE_SIZE), "punch: errno %d", errno);
	ok &= p[3 * PAGE_SIZE] == 0 && p[3 * PAGE_SIZE + 100] == 0;
	fill(src, PAGE_SIZE, 5);
	w6 = ret(pwrite(fd, src, PAGE_SIZE, 3 * PAGE_SIZE));
	ok &= !memcmp(p + 3 * PAGE_SIZE, src, PAGE_SIZE);
	if (ok && w1 == PAGE_SIZE && pos == PAGE_SIZE && w2 == 2 * PAGE_SIZE && w3 == PAGE_SIZE &&
	    w4 == 3 * PAGE_SIZE && w5 == PAGE_SIZE && w6 == PAGE_SIZE)
		ksft_test_result_pass("on demand, rewritten, from itself, up to a bad source\n");
	else
		ksft_test_result_fail("data %d; write %ld pos %ld pwrite %ld %ld %ld %ld %ld\n", ok,
				      w1, pos, w2, w3, w4, w5, w6);
	munmap(p, SIZE);
	close(fd);
}

/*
 * NO_DIRECT_MAP: a page write() fills leaves the direct map; one already
 * out is overwritten without it; a punch puts it back.
 */
static void test_no_direct_map(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED | WR | NDM);
	char *p = map(fd);
	int fresh, faulted, over, punched;
	uint64_t pfn;
	long w1, w2;
	int ok = 1;

	fill(src, sizeof(src), 3);
	w1 = ret(pwrite(fd, src, 2 * PAGE_SIZE, 0));
	fresh = gmem_probe(probe_dev, fd, 0, &pfn);
	ok &= !memcmp(p, src, 2 * PAGE_SIZE);
	/* Page 2 goes out at the VMM's first touch; then write() overwrites it. */
	p[2 * PAGE_SIZE] = 1;
	faulted = gmem_probe(probe_dev, fd, 2 * PAGE_SIZE, NULL);
	fill(src, PAGE_SIZE, 11);
	w2 = ret(pwrite(fd, src, PAGE_SIZE, 2 * PAGE_SIZE));
	over = gmem_probe(probe_dev, fd, 2 * PAGE_SIZE, NULL);
	ok &= !memcmp(p + 2 * PAGE_SIZE, src, PAGE_SIZE);
	TEST_ASSERT(!fallocate(fd, KS | PH, 0, PAGE_SIZE), "punch: errno %d", errno);
	punched = gmem_probe_pfn(probe_dev, pfn);
	if (ok && w1 == 2 * PAGE_SIZE && w2 == PAGE_SIZE && fresh == 0 && faulted == 0 &&
	    over == 0 && punched == 1)
		ksft_test_result_pass("NO_DIRECT_MAP: written out, rewritten out, punched back\n");
	else
		ksft_test_result_fail("data %d, writes %ld %ld; direct map: %d %d %d %d\n", ok,
				      w1, w2, fresh, faulted, over, punched);
	munmap(p, SIZE);
	close(fd);
}

/* A poisoned page: EHWPOISON, and a write that reaches it stops before it. */
static void test_hwpoison(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED | WR);
	char *p = map(fd);
	uint64_t pfn;
	long at, before;

	fill(src, sizeof(src), 7);
	TEST_ASSERT(pwrite(fd, src, SIZE, 0) == SIZE, "pwrite: errno %d", errno);
	TEST_ASSERT(gmem_probe(probe_dev, fd, 2 * PAGE_SIZE, &pfn) == 1, "probe page 2");
	gmem_corrupt_pfn(pfn);
	at = ret(pwrite(fd, src, PAGE_SIZE, 2 * PAGE_SIZE));
	before = ret(pwrite(fd, src, 2 * PAGE_SIZE, PAGE_SIZE));
	if (at == -EHWPOISON && before == PAGE_SIZE && !memcmp(p + PAGE_SIZE, src, PAGE_SIZE))
		ksft_test_result_pass("poisoned page: EHWPOISON; a write up to it stops there\n");
	else
		ksft_test_result_fail("at the page %ld, up to it %ld\n", at, before);
	munmap(p, SIZE);
	close(fd);
}

static uint64_t guest_seed;

/* Every page holds what the VMM wrote with write(); the guest answers. */
static void guest_code(void)
{
	uint8_t *mem = (uint8_t *)TEST_GPA;
	uint64_t i;

	for (i = 0; i < SIZE; i++)
		GUEST_ASSERT_EQ(mem[i], (uint8_t)(guest_seed + i * 7 + i / PAGE_SIZE));
	for (i = 0; i < NPAGES; i++)
		WRITE_ONCE(*(uint64_t *)(mem + i * PAGE_SIZE), ~guest_seed);
	GUEST_DONE();
}

/* A default VM whose slot is such a file: the guest sees the VMM's write(). */
static void test_guest(uint64_t flags, const char *name)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	int fd = vm_create_guest_memfd(vm, SIZE, flags);
	char *p = map(fd);
	long w;
	int i, seen = 1;

	guest_seed = 0x3c;
	fill(src, SIZE, guest_seed);
	w = ret(pwrite(fd, src, SIZE, 0));
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, p, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	sync_global_to_guest(vm, guest_seed);
	gmem_run_to_done(vcpu);
	for (i = 0; i < NPAGES; i++)
		seen &= *(uint64_t *)(p + i * PAGE_SIZE) == ~guest_seed;
	if (w == SIZE && seen)
		ksft_test_result_pass("%s: the guest reads what write() put there\n", name);
	else
		ksft_test_result_fail("%s: pwrite %ld, guest's writes seen %d\n", name, w, seen);
	kvm_vm_free(vm);
	munmap(p, SIZE);
	close(fd);
}

/*
 * gmem_rs's 2 MiB folios, in a file no one maps (the test does not) but
 * whose memory is shared: a write fills a page of a 2 MiB folio, the rest
 * of it zeroed; with NO_DIRECT_MAP the whole folio leaves the direct map,
 * and is rewritten without it. A huge file without INIT_SHARED is private.
 */
static void test_huge(struct kvm_vm *vm, uint64_t flags, const char *name)
{
	int fd = vm_create_guest_memfd(vm, 4ul << 20, HUGE | SHARED | WR | flags);
	int private = vm_create_guest_memfd(vm, 2ul << 20, HUGE | WR);
	uint64_t pfn0 = 0, pfn2 = 0, word0 = 1, word2 = 0, last = 1, again_word = 0;
	uint64_t first_word, fallbacks = gmem_vmstat("thp_file_fallback");
	int r0, r2, r_last, next, again, in = !(flags & NDM);
	long w, w_again, w_private;

	fill(src, PAGE_SIZE, 13);
	first_word = *(uint64_t *)src;
	w = ret(pwrite(fd, src, PAGE_SIZE, 2 * PAGE_SIZE));
	if (gmem_vmstat("thp_file_fallback") != fallbacks) {
		/* Not the write's doing: the allocator had no 2 MiB page at once. */
		ksft_test_result_fail("%s: no 2 MiB folio (thp_file_fallback rose)\n", name);
		goto out;
	}
	r0 = gmem_probe_word(probe_dev, fd, 0, &pfn0, &word0);
	r2 = gmem_probe_word(probe_dev, fd, 2 * PAGE_SIZE, &pfn2, &word2);
	r_last = gmem_probe_word(probe_dev, fd, (2ul << 20) - PAGE_SIZE, NULL, &last);
	next = gmem_probe(probe_dev, fd, 2ul << 20, NULL);
	fill(src, PAGE_SIZE, 17);
	w_again = ret(pwrite(fd, src, PAGE_SIZE, 2 * PAGE_SIZE));
	again = gmem_probe_word(probe_dev, fd, 2 * PAGE_SIZE, NULL, &again_word);
	w_private = ret(pwrite(private, src, PAGE_SIZE, 0));
	if (w == PAGE_SIZE && w_again == PAGE_SIZE && w_private == -EACCES &&
	    pfn2 == pfn0 + 2 && next == -ENOENT && r0 == in && r2 == in && r_last == in &&
	    again == in &&
	    (!in || (word0 == 0 && last == 0 && word2 == first_word &&
		     again_word == *(uint64_t *)src)))
		ksft_test_result_pass("%s: a page of a 2 MiB folio written, rewritten\n", name);
	else
		ksft_test_result_fail("%s: %ld %ld %ld; %#lx %#lx; %d %d %d %d %d; %#lx %#lx\n",
				      name, w, w_again, w_private, pfn0, pfn2, r0, r2, r_last, next,
				      again, word0, word2);
out:
	close(private);
	close(fd);
}

int main(int argc, char *argv[])
{
	uint64_t sys = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	bool ndm = sys & NDM, huge = sys & HUGE;
	struct kvm_vm *vm;

	TEST_REQUIRE(sys & WR);
	probe_dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(probe_dev >= 0, "%s: errno %d (kvm_gmem_populate_test loaded?)",
		    GMEM_POPULATE_DEV, errno);

	ksft_print_header();
	ksft_set_plan(5 + (2 + huge) * ndm + huge);
	test_flags();
	vm = vm_create_barebones();
	test_errno(vm);
	test_data(vm);
	if (ndm)
		test_no_direct_map(vm);
	test_hwpoison(vm);
	if (huge)
		test_huge(vm, 0, "HUGE | INIT_SHARED | WRITE");
	if (huge && ndm)
		test_huge(vm, NDM, "with NO_DIRECT_MAP");
	kvm_vm_free(vm);
	test_guest(MMAP | SHARED | WR, "MMAP | INIT_SHARED | WRITE");
	if (ndm)
		test_guest(MMAP | SHARED | WR | NDM, "with NO_DIRECT_MAP (Firecracker's restore)");
	ksft_finished();
}
