// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_huge_test: guest_memfd files with GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD,
 * gmem-rs's own flag: memory in 2 MiB folios, mapped 2 MiB into the guest.
 *
 * The backend that offers the flag (gmem_rs) must list it in
 * KVM_CAP_GUEST_MEMFD_FLAGS and keep its contract: sizes in whole huge
 * pages, no MMAP; the built-in C backend must refuse it. With it, a guest
 * writes and reads back all of a private memslot, and KVM's own counts of
 * its mappings (the VM's pages_2m and pages_4k statistics) show how each
 * range is mapped: 2 MiB where file offset and gfn are equally aligned and
 * the attributes of the whole 2 MiB agree, 4 KiB where not. Punches of
 * 4 KiB pages, of whole huge pages and of unaligned ranges read back as
 * zeros and give their memory back (/proc/meminfo's Unevictable, where
 * guest_memfd pages are counted), while what they do not cover keeps its
 * data, also while the guest runs. kvm_gmem_populate() fills a huge folio
 * whole, or splits it for part of one. A memory error in a huge folio fails
 * only its own gfn. When the allocator has no huge page (fail_page_alloc
 * fails every order-9 allocation), faults fall back to 4 KiB folios and the
 * guest runs on. Two threads allocating the same huge pages at once get one
 * folio for each. On both backends: an MFD_INACCESSIBLE memfd in shmem's huge
 * folios (shmem_enabled=always) serves a guest, mapped 4 KiB, and 4 KiB
 * punches in it give their memory back and read as zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define HUGE		GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD
#define HPAGE		(2ul << 20)
#define HPAGE_PAGES	(HPAGE / PAGE_SIZE)
#define NHUGE		4ul
#define SIZE		(NHUGE * HPAGE)
#define NPAGES		(SIZE / PAGE_SIZE)
#define TEST_GPA	BIT_ULL(32)
#define TEST_SLOT	10
#define KS		FALLOC_FL_KEEP_SIZE
#define PH		FALLOC_FL_PUNCH_HOLE
/* Unevictable is counted in kB, and moves by a little on its own. */
#define SLACK_KB	512
/*
 * 4 KiB mappings that are not the test slot's: the guest's page tables for
 * the slot, in slot 0, are mapped when the guest first walks them.
 */
#define PT_SLACK	16

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"
#define FAIL_PAGE_ALLOC	"/sys/kernel/debug/fail_page_alloc/"
#define SHMEM_ENABLED	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/*
 * OP_RACE: each page holds what was written or, punched meanwhile, zero.
 * OP_READ_ONE: read page g_one.
 */
enum { OP_NONE, OP_WRITE, OP_CHECK, OP_RACE, OP_READ_ONE };

/* What the guest does on its next run, set by the host before each run. */
static uint64_t g_op, g_seed, g_npages, g_one;
/* Pages the host punched since the guest wrote them: they must read 0. */
static uint8_t g_zero[NPAGES];
/* Pages the host made shared: their data is the host's, not checked. */
static uint8_t g_skip[NPAGES];

/*
 * Writes, or checks, the first and last word of each page of the test
 * range; reports the number of pages that did not hold what they should.
 */
static void guest_code(void)
{
	for (;;) {
		uint64_t i, bad = 0;

		for (i = 0; i < g_npages; i++) {
			uint64_t *first = (uint64_t *)(TEST_GPA + i * PAGE_SIZE);
			uint64_t *last = first + PAGE_SIZE / 8 - 1;
			uint64_t want = g_zero[i] ? 0 : g_seed + i, a, b;

			if (g_op == OP_WRITE) {
				WRITE_ONCE(*first, g_seed + i);
				WRITE_ONCE(*last, g_seed + i);
			} else if (g_op == OP_CHECK && !g_skip[i]) {
				bad += READ_ONCE(*first) != want || READ_ONCE(*last) != want;
			} else if (g_op == OP_RACE) {
				a = READ_ONCE(*first);
				b = READ_ONCE(*last);
				bad += (a && a != g_seed + i) || (b && b != g_seed + i);
			} else if (g_op == OP_READ_ONE && i == g_one) {
				bad += READ_ONCE(*first) != want;
			}
		}
		GUEST_SYNC(bad);
	}
}

struct huge_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	void *shared;		/* the slot's host memory, for shared pages */
	void *shared_alloc;
	int fd;
	uint64_t npages;	/* pages the slot maps */
};

/* Runs the guest's @op over the slot; returns the number of bad pages. */
static uint64_t guest_run(struct huge_vm *h, uint64_t op)
{
	struct ucall uc;

	g_op = op;
	g_npages = h->npages;
	sync_global_to_guest(h->vm, g_op);
	sync_global_to_guest(h->vm, g_seed);
	sync_global_to_guest(h->vm, g_npages);
	sync_global_to_guest(h->vm, g_one);
	sync_global_to_guest(h->vm, g_zero);
	sync_global_to_guest(h->vm, g_skip);
	vcpu_run(h->vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(h->vcpu, KVM_EXIT_IO);
	if (get_ucall(h->vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(uc.cmd == UCALL_SYNC, "ucall %lu, wanted SYNC", uc.cmd);
	return uc.args[1];
}

/*
 * A software-protected VM with a private slot of @slot_size bytes at
 * TEST_GPA, bound from @offset to @fd, or to a new huge file of @fsize
 * bytes if @fd is negative. The slot's host memory is 2 MiB aligned, as KVM
 * needs to map 2 MiB at all.
 */
static void huge_vm_create_sized(struct huge_vm *h, int fd, uint64_t fsize, uint64_t offset,
				 uint64_t slot_size)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};

	h->vm = __vm_create_shape_with_one_vcpu(shape, &h->vcpu, 64, guest_code);
	h->fd = fd >= 0 ? fd : vm_create_guest_memfd(h->vm, fsize, HUGE);
	h->npages = slot_size / PAGE_SIZE;
	h->shared_alloc = mmap(NULL, slot_size + HPAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(h->shared_alloc != MAP_FAILED, "mmap: errno %d", errno);
	h->shared = (void *)(((uintptr_t)h->shared_alloc + HPAGE - 1) & ~(HPAGE - 1));
	vm_set_user_memory_region2(h->vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
				   slot_size, h->shared, h->fd, offset);
	virt_map(h->vm, TEST_GPA, TEST_GPA, h->npages);
	vm_mem_set_private(h->vm, TEST_GPA, slot_size);
	memset(g_zero, 0, sizeof(g_zero));
	memset(g_skip, 0, sizeof(g_skip));
	g_seed += 1000000;
	/* The guest's code, stack and page tables are mapped before anything is counted. */
	TEST_ASSERT_EQ(guest_run(h, OP_NONE), 0);
}

static void huge_vm_create_fd(struct huge_vm *h, int fd, uint64_t offset, uint64_t slot_size)
{
	huge_vm_create_sized(h, fd, SIZE, offset, slot_size);
}

static void huge_vm_create(struct huge_vm *h, uint64_t offset, uint64_t slot_size)
{
	huge_vm_create_fd(h, -1, offset, slot_size);
}

static void huge_vm_free(struct huge_vm *h)
{
	close(h->fd);
	kvm_vm_free(h->vm);
	munmap(h->shared_alloc, h->npages * PAGE_SIZE + HPAGE);
}

/*
 * KVM mapped @want2 more 2 MiB pages than @m2 says, and @want4 more 4 KiB
 * pages than @m4 says, give or take the guest's page tables.
 */
static void expect_maps(struct huge_vm *h, uint64_t m2, uint64_t m4, uint64_t want2,
			uint64_t want4, const char *what)
{
	uint64_t n2 = vm_get_stat(h->vm, "pages_2m") - m2;
	uint64_t n4 = vm_get_stat(h->vm, "pages_4k") - m4;

	TEST_ASSERT(n2 == want2 && n4 >= want4 && n4 <= want4 + PT_SLACK,
		    "%s: mapped %lu x 2M and %lu x 4K, wanted %lu and %lu", what, n2, n4,
		    want2, want4);
}

static void punch(int fd, uint64_t offset, uint64_t len)
{
	uint64_t i;

	TEST_ASSERT(!fallocate(fd, KS | PH, offset, len),
		    "hole [%#lx, +%#lx): errno %d", offset, len, errno);
	for (i = offset / PAGE_SIZE; i < (offset + len) / PAGE_SIZE; i++)
		g_zero[i] = 1;
}

static bool near_kb(long got, long want)
{
	return got >= want - SLACK_KB && got <= want + SLACK_KB;
}

/* The flag is listed where it is served, and its contract holds. */
static void test_flags(bool rust)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	uint64_t flags = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	int fd;

	TEST_ASSERT(!!(flags & HUGE) == rust, "KVM_CAP_GUEST_MEMFD_FLAGS %#lx with%s gmem_rs",
		    flags, rust ? "" : "out");
	TEST_ASSERT(!!(vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS) & HUGE) == rust,
		    "the VM's KVM_CAP_GUEST_MEMFD_FLAGS disagrees");
	ksft_test_result_pass("KVM_CAP_GUEST_MEMFD_FLAGS %s the huge flag (%#lx)\n",
			      rust ? "lists" : "does not list", flags);
	if (!rust) {
		fd = __vm_create_guest_memfd(vm, SIZE, HUGE);
		TEST_ASSERT(fd < 0 && errno == EINVAL, "C backend: fd %d errno %d", fd, errno);
		ksft_test_result_pass("the C backend refuses the huge flag: EINVAL\n");
		kvm_vm_free(vm);
		return;
	}
	/* Any size: what is listed works alone on one page, as VMMs expect. */
	fd = __vm_create_guest_memfd(vm, PAGE_SIZE, HUGE);
	TEST_ASSERT(fd >= 0 && !fallocate(fd, KS, 0, PAGE_SIZE) &&
		    !fallocate(fd, KS | PH, 0, PAGE_SIZE), "4 KiB: fd %d errno %d", fd, errno);
	close(fd);
	fd = __vm_create_guest_memfd(vm, HPAGE + PAGE_SIZE, HUGE);
	TEST_ASSERT(fd >= 0, "2 MiB + 4 KiB: errno %d", errno);
	close(fd);
	fd = __vm_create_guest_memfd(vm, HPAGE, HUGE | GUEST_MEMFD_FLAG_MMAP);
	TEST_ASSERT(fd >= 0, "HUGE | MMAP: errno %d", errno);
	close(fd);
	fd = __vm_create_guest_memfd(vm, HPAGE, HUGE | BIT_ULL(17));
	TEST_ASSERT(fd < 0 && errno == EINVAL, "HUGE | bit 17: fd %d errno %d", fd, errno);
	fd = __vm_create_guest_memfd(vm, SIZE, HUGE);
	TEST_ASSERT(fd >= 0, "4 huge pages: errno %d", errno);
	TEST_ASSERT(mmap(NULL, HPAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED &&
		    errno == ENODEV, "mmap of a huge file without MMAP: errno %d", errno);
	close(fd);
	ksft_test_result_pass("huge files of any size (4 KiB, 2 MiB + 4 KiB), with MMAP too\n");
	kvm_vm_free(vm);
}

/*
 * The guest writes and reads all of the slot, all mapped 2 MiB; then a page
 * made shared drops its 2 MiB to 4 KiB mappings; then 4 KiB punches split
 * their huge folios and give back their pages, which read as zeros.
 */
static void test_map_convert_punch(void)
{
	uint64_t alloc0, fallback0, m2, m4, i, bad;
	struct huge_vm h;
	long kb;

	alloc0 = gmem_vmstat("thp_file_alloc");
	fallback0 = gmem_vmstat("thp_file_fallback");
	huge_vm_create(&h, 0, SIZE);
	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong", bad);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") - alloc0 == NHUGE &&
		    gmem_vmstat("thp_file_fallback") == fallback0,
		    "huge folios allocated %lu, fallbacks %lu, of %lu",
		    gmem_vmstat("thp_file_alloc") - alloc0,
		    gmem_vmstat("thp_file_fallback") - fallback0, NHUGE);
	expect_maps(&h, m2, m4, NHUGE, 0, "aligned, private");
	ksft_test_result_pass("guest wrote and read %lu MiB, mapped as %lu x 2 MiB\n",
			      SIZE >> 20, NHUGE);

	/* One shared 4 KiB page in huge page 1: its attributes are mixed. */
	i = HPAGE_PAGES + 7;
	vm_mem_set_shared(h.vm, TEST_GPA + i * PAGE_SIZE, PAGE_SIZE);
	g_skip[i] = 1;
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after a conversion", bad);
	/* The guest does not read the shared page: 511 private pages. */
	expect_maps(&h, m2, m4, NHUGE - 1, HPAGE_PAGES - 1, "a page converted");
	ksft_test_result_pass("mixed attributes map their 2 MiB as 4 KiB pages\n");

	/* QEMU discards a converted page's private copy: punch it, 4 KiB. */
	kb = gmem_unevictable_kb();
	punch(h.fd, i * PAGE_SIZE, PAGE_SIZE);
	/* Every other 4 KiB page of huge pages 2 and 3: 2 MiB in all. */
	for (i = 2 * HPAGE_PAGES; i < NPAGES; i += 2)
		punch(h.fd, i * PAGE_SIZE, PAGE_SIZE);
	kb -= gmem_unevictable_kb();
	TEST_ASSERT(near_kb(kb, (HPAGE + PAGE_SIZE) >> 10),
		    "4 KiB punches of %lu kB gave back %ld kB", (uint64_t)(HPAGE + PAGE_SIZE) >> 10,
		    kb);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after 4 KiB punches", bad);
	TEST_ASSERT(vm_get_stat(h.vm, "pages_2m") - m2 == 1,
		    "after 4 KiB punches: %lu x 2M, wanted 1 (huge page 0)",
		    vm_get_stat(h.vm, "pages_2m") - m2);
	ksft_test_result_pass("4 KiB punches in huge pages gave back %ld kB and read zeros\n",
			      kb);
	huge_vm_free(&h);
}

/*
 * Punches of a whole huge page and of an unaligned range across three give
 * back what they cover; the whole huge page is allocated huge again.
 */
static void test_punch_ranges(void)
{
	uint64_t alloc0, m2, bad, start, end, len;
	struct huge_vm h;
	long kb;

	huge_vm_create(&h, 0, SIZE);
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);

	kb = gmem_unevictable_kb();
	punch(h.fd, 3 * HPAGE, HPAGE);
	kb -= gmem_unevictable_kb();
	TEST_ASSERT(near_kb(kb, HPAGE >> 10), "a 2 MiB punch gave back %ld kB", kb);
	alloc0 = gmem_vmstat("thp_file_alloc");
	m2 = vm_get_stat(h.vm, "pages_2m");
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after a 2 MiB punch", bad);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") - alloc0 == 1 &&
		    vm_get_stat(h.vm, "pages_2m") == m2 + 1,
		    "a punched huge page came back as %lu huge folios, %lu 2M mappings",
		    gmem_vmstat("thp_file_alloc") - alloc0, vm_get_stat(h.vm, "pages_2m") - m2);
	ksft_test_result_pass("a 2 MiB punch gave back %ld kB; the guest gets a new huge page\n",
			      kb);

	/* From 1 MiB + 4 KiB to 5 MiB - 4 KiB: parts of huge pages 0 and 2, all of 1. */
	start = HPAGE / 2 + PAGE_SIZE;
	end = 2 * HPAGE + HPAGE / 2 - PAGE_SIZE;
	len = end - start;
	kb = gmem_unevictable_kb();
	punch(h.fd, start, len);
	kb -= gmem_unevictable_kb();
	TEST_ASSERT(near_kb(kb, len >> 10), "an unaligned punch of %lu kB gave back %ld kB",
		    len >> 10, kb);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after an unaligned punch", bad);
	ksft_test_result_pass("an unaligned punch of %lu kB gave back %ld kB and reads zeros\n",
			      len >> 10, kb);
	huge_vm_free(&h);
}

/*
 * A file whose size is not a whole number of huge pages: its whole 2 MiB
 * blocks get huge folios, mapped 2 MiB; its tail gets 4 KiB folios, mapped
 * 4 KiB. A punch across the last block's end, and one past the end of the
 * file, give back what they cover and read as zeros.
 */
#define TAIL_PAGES	16ul
static void test_tail(void)
{
	const uint64_t fsize = (NHUGE - 1) * HPAGE + TAIL_PAGES * PAGE_SIZE;
	uint64_t alloc0, fallback0, m2, m4, bad, start;
	struct huge_vm h;
	long kb;

	alloc0 = gmem_vmstat("thp_file_alloc");
	fallback0 = gmem_vmstat("thp_file_fallback");
	huge_vm_create_sized(&h, -1, fsize, 0, fsize);
	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong", bad);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") - alloc0 == NHUGE - 1 &&
		    gmem_vmstat("thp_file_fallback") == fallback0,
		    "huge folios allocated %lu, fallbacks %lu, of %lu",
		    gmem_vmstat("thp_file_alloc") - alloc0,
		    gmem_vmstat("thp_file_fallback") - fallback0, NHUGE - 1);
	expect_maps(&h, m2, m4, NHUGE - 1, TAIL_PAGES, "tail");

	/* 4 pages each side of the last block's end; then the last page and past it. */
	start = (NHUGE - 1) * HPAGE - 4 * PAGE_SIZE;
	kb = gmem_unevictable_kb();
	punch(h.fd, start, 8 * PAGE_SIZE);
	TEST_ASSERT(!fallocate(h.fd, KS | PH, fsize - PAGE_SIZE, 2 * PAGE_SIZE),
		    "a punch past the end: errno %d", errno);
	g_zero[fsize / PAGE_SIZE - 1] = 1;
	kb -= gmem_unevictable_kb();
	TEST_ASSERT(near_kb(kb, 9 * PAGE_SIZE >> 10), "tail punches of 36 kB gave back %ld kB",
		    kb);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after tail punches", bad);
	ksft_test_result_pass("%lu x 2 MiB + %lu pages: blocks 2 MiB, tail 4 KiB; punches read 0\n",
			      NHUGE - 1, TAIL_PAGES);
	huge_vm_free(&h);
}

/* A slot whose gfns and file offsets differ in alignment maps 4 KiB only. */
static void test_misaligned_slot(void)
{
	uint64_t m2, m4, alloc0, bad;
	struct huge_vm h;

	alloc0 = gmem_vmstat("thp_file_alloc");
	huge_vm_create(&h, PAGE_SIZE, SIZE - HPAGE);
	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong", bad);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") > alloc0, "no huge folio was allocated");
	expect_maps(&h, m2, m4, 0, h.npages, "misaligned slot");
	ksft_test_result_pass("a slot 4 KiB off its file's alignment maps %lu x 4 KiB\n",
			      h.npages);
	huge_vm_free(&h);
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	TEST_ASSERT(fd >= 0, "open(%s): errno %d", path, errno);
	n = read(fd, buf, size - 1);
	TEST_ASSERT(n >= 0, "read(%s): errno %d", path, errno);
	buf[n] = 0;
	close(fd);
}

/* kvm_gmem_populate() of @n pages from page @first, page i's words g_seed + i. */
static long populate(struct huge_vm *h, int dev, uint64_t *src, uint64_t first, uint64_t n)
{
	struct gmem_populate_test_args args = {
		.vm_fd = h->vm->fd, .gfn = (TEST_GPA >> PAGE_SHIFT) + first,
		.src = (uint64_t)src, .npages = n,
	};
	uint64_t i;

	for (i = 0; i < n; i++) {
		src[i * PAGE_SIZE / 8] = g_seed + first + i;
		src[(i + 1) * PAGE_SIZE / 8 - 1] = g_seed + first + i;
	}
	return ioctl(dev, GMEM_POPULATE_TEST, &args);
}

/*
 * kvm_gmem_populate(), each page once (EEXIST after): of a whole huge page,
 * into the folio fallocate() made (mapped 2 MiB); of 8 pages in another,
 * which it splits; of 8 pages where nothing is allocated, in 4 KiB folios.
 */
static void test_populate(void)
{
	/* Not static: the guest's image holds the test's .bss. */
	uint64_t *src = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
	uint64_t m2, m4, i, bad, part[] = { HPAGE_PAGES + 3, 3 * HPAGE_PAGES + 3 };
	struct huge_vm h;
	int dev, j;
	long r;

	TEST_ASSERT(src != MAP_FAILED, "mmap: errno %d", errno);
	dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(dev >= 0, "open(%s): errno %d; is kvm_gmem_populate_test.ko loaded?",
		    GMEM_POPULATE_DEV, errno);
	huge_vm_create(&h, 0, SIZE);
	/* Huge folios everywhere, not yet used; then none in huge page 3. */
	TEST_ASSERT(!fallocate(h.fd, KS, 0, SIZE), "fallocate: errno %d", errno);
	punch(h.fd, 3 * HPAGE, HPAGE);
	for (i = 0; i < NPAGES; i++)
		g_zero[i] = i >= HPAGE_PAGES;

	r = populate(&h, dev, src, 0, HPAGE_PAGES);
	TEST_ASSERT(r == (long)HPAGE_PAGES, "populate of huge page 0: %ld, errno %d", r, errno);
	r = populate(&h, dev, src, 0, 1);
	TEST_ASSERT(r == -1 && errno == EEXIST, "populate again: %ld, errno %d", r, errno);
	for (j = 0; j < 2; j++) {
		r = populate(&h, dev, src, part[j], 8);
		TEST_ASSERT(r == 8, "populate of 8 pages from %lu: %ld, errno %d", part[j], r,
			    errno);
		r = populate(&h, dev, src, part[j], 8);
		TEST_ASSERT(r == -1 && errno == EEXIST, "populate of those again: %ld, errno %d",
			    r, errno);
		for (i = part[j]; i < part[j] + 8; i++)
			g_zero[i] = 0;
	}

	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong after populate", bad);
	/* Huge pages 0 (populated) and 2 (faulted in) are whole; 1 was split, 3 is 4 KiB. */
	expect_maps(&h, m2, m4, 2, 2 * HPAGE_PAGES, "populated");
	ksft_test_result_pass("populate fills a huge folio whole, or splits it, or goes 4 KiB\n");
	huge_vm_free(&h);
	close(dev);
	munmap(src, HPAGE);
}

/* The guest's read of @page fails: KVM_RUN exits on its poisoned 4 KiB. */
static void expect_poisoned_read(struct huge_vm *h, uint64_t page)
{
	int r;

	g_one = page;
	g_op = OP_READ_ONE;
	sync_global_to_guest(h->vm, g_op);
	sync_global_to_guest(h->vm, g_one);
	r = _vcpu_run(h->vcpu);
	TEST_ASSERT(r == -1 && errno == EHWPOISON, "KVM_RUN on the poisoned page: %d, errno %d",
		    r, errno);
	TEST_ASSERT_EQ(h->vcpu->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(h->vcpu->run->memory_fault.gpa, TEST_GPA + page * PAGE_SIZE);
	TEST_ASSERT_EQ(h->vcpu->run->memory_fault.size, PAGE_SIZE);
}

/*
 * A memory error in a page of a huge folio splits the folio: the guest
 * reads every other page, mapped 4 KiB from then on, and the poisoned
 * one fails with EHWPOISON for its gfn alone until it is punched.
 */
static void test_hwpoison(void)
{
	uint64_t gfn = (TEST_GPA >> PAGE_SHIFT) + HPAGE_PAGES, pfn, m2, m4, bad;
	uint64_t poisoned = HPAGE_PAGES + 5;
	struct huge_vm h;
	char buf[64];
	int fd, r;

	huge_vm_create(&h, 0, SIZE);
	snprintf(buf, sizeof(buf), "gfn == 0x%lx", gfn);
	gmem_write_file(GMEM_SPTE_EVENT "/filter", buf);
	gmem_write_file(GMEM_TRACING "/trace", "");
	gmem_write_file(GMEM_SPTE_EVENT "/enable", "1");
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	gmem_write_file(GMEM_SPTE_EVENT "/enable", "0");
	gmem_write_file(GMEM_SPTE_EVENT "/filter", "0");
	pfn = gmem_traced_pfn(gfn, PG_LEVEL_2M);
	TEST_ASSERT(pfn, "no 2 MiB SPTE for gfn 0x%lx in the trace", gfn);

	/* guest_memfd keeps the page and answers MF_DELAYED: EBUSY, poisoned all the same. */
	snprintf(buf, sizeof(buf), "0x%lx", pfn + 5);
	fd = open(CORRUPT_PFN, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open(%s): errno %d", CORRUPT_PFN, errno);
	r = write(fd, buf, strlen(buf));
	TEST_ASSERT(r == (int)strlen(buf) || errno == EBUSY, "injecting at pfn %s: %d, errno %d",
		    buf, r, errno);
	close(fd);

	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	g_skip[poisoned] = 1;
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong beside a poisoned page", bad);
	/* Huge page 1 was zapped and is mapped 4 KiB now, but for the poisoned page. */
	expect_maps(&h, m2, m4, 0, HPAGE_PAGES - 1, "a page poisoned");

	expect_poisoned_read(&h, poisoned);

	punch(h.fd, poisoned * PAGE_SIZE, PAGE_SIZE);
	/*
	 * The guest resumes the read that exited, against what it expected
	 * before the punch: that pass's count is void. The next one counts.
	 */
	guest_run(&h, OP_READ_ONE);
	TEST_ASSERT_EQ(guest_run(&h, OP_READ_ONE), 0);
	ksft_test_result_pass("a poisoned 4 KiB page of a huge folio fails only its gfn\n");
	huge_vm_free(&h);
}

/*
 * A memory error in a huge folio that cannot be split, because a fault's
 * page reference is held meanwhile (the populate test module holds what
 * kvm_gmem_get_pfn() gives): 6.12's memory_failure() gives up on the split,
 * and must still tell guest_memfd, which zaps the guest's 2 MiB mapping.
 * The poisoned gfn then fails, and the rest of the 2 MiB reads back.
 */
static void test_hwpoison_unsplit(void)
{
	uint64_t gfn = (TEST_GPA >> PAGE_SHIFT) + 2 * HPAGE_PAGES;
	uint64_t poisoned = 2 * HPAGE_PAGES + 9, m2, bad;
	struct gmem_hold_test_args hold = {};
	struct huge_vm h;
	char buf[64];
	int dev, fd, r;

	huge_vm_create(&h, 0, SIZE);
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	m2 = vm_get_stat(h.vm, "pages_2m");
	TEST_ASSERT(m2 >= NHUGE, "the guest maps %lu x 2 MiB, wanted %lu", m2, NHUGE);

	dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(dev >= 0, "open(%s): errno %d", GMEM_POPULATE_DEV, errno);
	hold.vm_fd = h.vm->fd;
	hold.gfn = gfn;
	TEST_ASSERT(!ioctl(dev, GMEM_HOLD_TEST, &hold), "GMEM_HOLD_TEST: errno %d", errno);

	snprintf(buf, sizeof(buf), "0x%lx", (unsigned long)hold.pfn + 9);
	fd = open(CORRUPT_PFN, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open(%s): errno %d", CORRUPT_PFN, errno);
	r = write(fd, buf, strlen(buf));
	TEST_ASSERT(r == (int)strlen(buf) || errno == EBUSY || errno == EHWPOISON,
		    "injecting at pfn %s: %d, errno %d", buf, r, errno);
	close(fd);
	TEST_ASSERT(vm_get_stat(h.vm, "pages_2m") == m2 - 1,
		    "after the error: %lu x 2 MiB mapped, wanted %lu (the poisoned one zapped)",
		    vm_get_stat(h.vm, "pages_2m"), m2 - 1);

	expect_poisoned_read(&h, poisoned);

	TEST_ASSERT(!ioctl(dev, GMEM_RELEASE_TEST), "GMEM_RELEASE_TEST: errno %d", errno);
	close(dev);
	/* The read that exited resumes, with the page punched (and free to split) now. */
	punch(h.fd, poisoned * PAGE_SIZE, PAGE_SIZE);
	guest_run(&h, OP_READ_ONE);
	g_skip[poisoned] = 1;
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong beside a poisoned page", bad);
	ksft_test_result_pass("an unsplittable poisoned huge folio: 2 MiB zapped, its gfn fails\n");
	huge_vm_free(&h);
}

/* The fail_page_alloc attributes this test sets, and their values before. */
static const char *const fail_attrs[] = {
	"probability", "times", "min-order", "ignore-gfp-wait", "ignore-gfp-highmem",
	"task-filter", "verbose",
};

/*
 * No huge page to be had: every order-9 allocation of this task fails.
 * Faults fall back to 4 KiB folios, counted, and the guest runs on.
 */
static void test_fragmentation(void)
{
	static const char *const on[] = { "100", "-1", "9", "N", "N", "Y", "0" };
	char saved[ARRAY_SIZE(fail_attrs)][32], path[128];
	uint64_t alloc0, fallback0, m2, m4, bad;
	struct huge_vm h;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fail_attrs); i++) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "%s", fail_attrs[i]);
		read_file(path, saved[i], sizeof(saved[i]));
	}
	huge_vm_create(&h, 0, SIZE);
	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	alloc0 = gmem_vmstat("thp_file_alloc");
	fallback0 = gmem_vmstat("thp_file_fallback");
	for (i = 0; i < ARRAY_SIZE(fail_attrs); i++) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "%s", fail_attrs[i]);
		gmem_write_file(path, on[i]);
	}
	gmem_write_file("/proc/self/make-it-fail", "1");
	bad = guest_run(&h, OP_WRITE);
	gmem_write_file("/proc/self/make-it-fail", "0");
	for (i = 0; i < ARRAY_SIZE(fail_attrs); i++) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "%s", fail_attrs[i]);
		gmem_write_file(path, saved[i]);
	}
	TEST_ASSERT_EQ(bad, 0);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu pages read back wrong on 4 KiB fallbacks", bad);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") == alloc0 &&
		    gmem_vmstat("thp_file_fallback") - fallback0 >= NHUGE,
		    "with no huge pages: %lu huge folios, %lu fallbacks",
		    gmem_vmstat("thp_file_alloc") - alloc0,
		    gmem_vmstat("thp_file_fallback") - fallback0);
	expect_maps(&h, m2, m4, 0, NPAGES, "4 KiB fallbacks");
	ksft_test_result_pass("no huge page: %lu fallbacks to 4 KiB, and the guest ran on\n",
			      gmem_vmstat("thp_file_fallback") - fallback0);
	huge_vm_free(&h);
}

/* The puncher punches while phase is PUNCH, says it is idle otherwise, and ends at STOP. */
enum { IDLE, PUNCH, STOP };

struct puncher {
	int fd;
	int phase;
	bool idle;
	uint64_t punches;
	uint8_t punched[NPAGES];	/* pages punched in this phase */
};

/* Punches a random 4 KiB page, or now and then a whole huge page, in each PUNCH phase. */
static void *puncher_run(void *arg)
{
	struct puncher *p = arg;
	unsigned int seed = 1;
	uint64_t i, first, n;
	cpu_set_t all;
	int phase;

	/* The test is pinned to one CPU; the puncher runs wherever it can. */
	memset(&all, 0xff, sizeof(all));
	sched_setaffinity(0, sizeof(all), &all);
	while ((phase = __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE)) != STOP) {
		if (phase != PUNCH) {
			__atomic_store_n(&p->idle, true, __ATOMIC_RELEASE);
			usleep(100);
			continue;
		}
		first = rand_r(&seed) % NPAGES;
		n = 1;
		if (rand_r(&seed) % 16 == 0) {
			first &= ~(HPAGE_PAGES - 1);
			n = HPAGE_PAGES;
		}
		TEST_ASSERT(!fallocate(p->fd, KS | PH, first * PAGE_SIZE, n * PAGE_SIZE),
			    "hole while the guest runs: errno %d", errno);
		for (i = first; i < first + n; i++)
			p->punched[i] = 1;
		p->punches++;
		usleep(200);
	}
	return NULL;
}

/*
 * Punches race with a guest that reads every page: each holds what the
 * guest wrote or, punched, zeros, never anything else. Once the punches
 * stop, every page punched reads exactly zero (none is still mapped from
 * before) and every other page its data. Then the guest writes them all
 * again, and again. The file's memory goes back after close.
 */
static void test_punch_while_running(void)
{
	struct puncher p = { .phase = IDLE };
	uint64_t race_bad = 0, bad = 0, runs = 0;
	struct timespec t0, t;
	struct huge_vm h;
	pthread_t thread;
	long base, kb;

	base = gmem_unevictable_kb();
	huge_vm_create(&h, 0, SIZE);
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	p.fd = h.fd;
	pthread_create(&thread, NULL, puncher_run, &p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		memset(p.punched, 0, sizeof(p.punched));
		__atomic_store_n(&p.idle, false, __ATOMIC_RELEASE);
		__atomic_store_n(&p.phase, PUNCH, __ATOMIC_RELEASE);
		race_bad += guest_run(&h, OP_RACE);
		__atomic_store_n(&p.phase, IDLE, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&p.idle, __ATOMIC_ACQUIRE))
			usleep(50);
		memcpy(g_zero, p.punched, sizeof(g_zero));
		bad += guest_run(&h, OP_CHECK);
		memset(g_zero, 0, sizeof(g_zero));
		TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
		runs++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec < 2 || runs < 8) && t.tv_sec - t0.tv_sec < 20);
	__atomic_store_n(&p.phase, STOP, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	TEST_ASSERT(!race_bad, "%lu pages held neither their data nor zeros during punches",
		    race_bad);
	TEST_ASSERT(!bad, "%lu pages read wrong after the punches (punched: not zero)", bad);
	TEST_ASSERT(p.punches > 0, "no punch ran");
	huge_vm_free(&h);
	kb = gmem_unevictable_kb() - base;
	TEST_ASSERT(near_kb(kb, 0), "%ld kB more Unevictable after close", kb);
	ksft_test_result_pass("%lu punches raced with %lu guest passes; punched pages read zero\n",
			      p.punches, runs);
}

/*
 * Two threads allocate the same huge pages at once (fallocate of a page at
 * each end of every 2 MiB): each 2 MiB gets one folio, the loser of a race
 * finds the winner's, and nothing is allocated twice or leaked.
 */
struct allocator {
	int fd;
	uint64_t page;		/* page of each huge page this thread allocates */
	pthread_barrier_t *barrier;
};

static void *allocator_run(void *arg)
{
	struct allocator *a = arg;
	uint64_t b;

	for (b = 0; b < 4 * NHUGE; b++) {
		pthread_barrier_wait(a->barrier);
		TEST_ASSERT(!fallocate(a->fd, KS, (b * HPAGE_PAGES + a->page) * PAGE_SIZE,
				       PAGE_SIZE), "fallocate: errno %d", errno);
	}
	return NULL;
}

static void test_allocation_race(void)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	uint64_t alloc0, fallback0, huge, fallback, round;
	struct allocator a[2];
	pthread_barrier_t barrier;
	pthread_t threads[2];
	long kb, want;
	int fd, i;

	pthread_barrier_init(&barrier, NULL, 2);
	for (round = 0; round < 4; round++) {
		fd = vm_create_guest_memfd(vm, 4 * SIZE, HUGE);
		kb = gmem_unevictable_kb();
		alloc0 = gmem_vmstat("thp_file_alloc");
		fallback0 = gmem_vmstat("thp_file_fallback");
		for (i = 0; i < 2; i++) {
			a[i] = (struct allocator) { fd, i ? HPAGE_PAGES - 1 : 0, &barrier };
			pthread_create(&threads[i], NULL, allocator_run, &a[i]);
		}
		for (i = 0; i < 2; i++)
			pthread_join(threads[i], NULL);
		/* Both threads' CPUs hold new folios in their LRU batches. */
		gmem_drain_all_lru();
		kb = gmem_unevictable_kb() - kb;
		huge = gmem_vmstat("thp_file_alloc") - alloc0;
		fallback = gmem_vmstat("thp_file_fallback") - fallback0;
		/* A huge page the allocator had not: two 4 KiB folios. */
		want = (huge * HPAGE + (4 * NHUGE - huge) * 2 * PAGE_SIZE) >> 10;
		TEST_ASSERT(huge + fallback >= 4 * NHUGE && huge <= 4 * NHUGE && near_kb(kb, want),
			    "racing allocations: %lu huge, %lu fallbacks of %lu; %ld kB, want %ld",
			    huge, fallback, 4 * NHUGE, kb, want);
		close(fd);
	}
	pthread_barrier_destroy(&barrier);
	kvm_vm_free(vm);
	ksft_test_result_pass("racing allocations of the same huge pages: one folio each\n");
}

/*
 * MFD_INACCESSIBLE memory in shmem's huge folios (shmem_enabled=always): the
 * guest runs on it, mapped 4 KiB (the store reports order 0), and 4 KiB
 * punches split the folios, give their memory back and read as zeros.
 */
/* shmem_enabled as it was, put back at exit: a failed assertion exits. */
static char shmem_enabled_saved[32];

static void restore_shmem_enabled(void)
{
	if (shmem_enabled_saved[0])
		gmem_write_file(SHMEM_ENABLED, shmem_enabled_saved);
}

static void test_mfd_huge(void)
{
	char modes[128], *saved = shmem_enabled_saved, *open_br, *close_br;
	uint64_t alloc0, m2, m4, bad, i;
	struct huge_vm h;
	long kb;
	int fd;

	read_file(SHMEM_ENABLED, modes, sizeof(modes));
	open_br = strchr(modes, '[');
	close_br = open_br ? strchr(open_br, ']') : NULL;
	TEST_ASSERT(close_br && close_br - open_br < (long)sizeof(shmem_enabled_saved),
		    "%s: %s", SHMEM_ENABLED, modes);
	snprintf(saved, sizeof(shmem_enabled_saved), "%.*s", (int)(close_br - open_br - 1),
		 open_br + 1);
	atexit(restore_shmem_enabled);
	gmem_write_file(SHMEM_ENABLED, "always");

	fd = gmem_inaccessible_memfd("gmem_huge_test", SIZE);
	huge_vm_create_fd(&h, fd, 0, SIZE);
	alloc0 = gmem_vmstat("thp_file_alloc");
	m2 = vm_get_stat(h.vm, "pages_2m");
	m4 = vm_get_stat(h.vm, "pages_4k");
	TEST_ASSERT_EQ(guest_run(&h, OP_WRITE), 0);
	TEST_ASSERT(gmem_vmstat("thp_file_alloc") - alloc0 == NHUGE,
		    "shmem allocated %lu huge folios, wanted %lu",
		    gmem_vmstat("thp_file_alloc") - alloc0, NHUGE);
	expect_maps(&h, m2, m4, 0, NPAGES, "MFD_INACCESSIBLE");

	/* Every other 4 KiB page of huge page 2: 1 MiB. */
	kb = gmem_unevictable_kb();
	for (i = 2 * HPAGE_PAGES; i < 3 * HPAGE_PAGES; i += 2)
		punch(h.fd, i * PAGE_SIZE, PAGE_SIZE);
	kb -= gmem_unevictable_kb();
	TEST_ASSERT(near_kb(kb, HPAGE >> 11), "MFD 4 KiB punches of 1 MiB gave back %ld kB", kb);
	bad = guest_run(&h, OP_CHECK);
	TEST_ASSERT(!bad, "%lu MFD pages read back wrong after 4 KiB punches", bad);
	restore_shmem_enabled();
	ksft_test_result_pass("MFD_INACCESSIBLE, huge: mapped 4 KiB, punches freed %ld kB\n", kb);
	huge_vm_free(&h);
}

static void guest_read_all(uint64_t gpa, uint64_t npages)
{
	for (uint64_t i = 0; i < npages; i++)
		GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(gpa + i * PAGE_SIZE)), i * 3 + 1);
	GUEST_DONE();
}

/*
 * A huge file the VMM maps (HUGE | MMAP | INIT_SHARED), on a VM without
 * private memory: the VMM's writes fill one 2 MiB folio, which a 2 MiB
 * aligned mapping (the address the kernel picks) maps with one PMD, since all
 * of its pages are shared, and a misaligned one a page at a time; a zap of
 * one page takes the PMD, and the next fault maps the folio whole again. KVM
 * maps it 2 MiB for the guest, which reads what the VMM wrote.
 */
static void test_mapped_huge(void)
{
	uint64_t flags = HUGE | GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	uint64_t allocs = gmem_vmstat("thp_file_alloc"), m2;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_read_all);
	int fd = vm_create_guest_memfd(vm, HPAGE, flags);
	char *alloc = mmap(NULL, 2 * HPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p, *q;
	long pmd_kb, rss_kb, q_pmd_kb, q_rss_kb, refault_kb;
	uint64_t i, bad = 0;

	/* Where the kernel picks the address, a 2 MiB mapping is 2 MiB aligned. */
	p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap of the file: errno %d", errno);
	TEST_ASSERT(!((uintptr_t)p & (HPAGE - 1)), "mapping at %p, not 2 MiB aligned", p);
	for (i = 0; i < HPAGE_PAGES; i++)
		*(uint64_t *)(p + i * PAGE_SIZE) = i * 3 + 1;
	pmd_kb = gmem_smaps_kb(p, "FilePmdMapped");
	rss_kb = gmem_smaps_kb(p, "Rss");

	/* The same folio, mapped where a PMD cannot map it: 4 KiB PTEs. */
	TEST_ASSERT(alloc != MAP_FAILED, "mmap: errno %d", errno);
	q = (char *)(((uintptr_t)alloc + HPAGE - 1) & ~(HPAGE - 1)) + PAGE_SIZE;
	q = mmap(q, HPAGE - PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	TEST_ASSERT(q != MAP_FAILED, "misaligned mmap of the file: errno %d", errno);
	for (i = 0; i < HPAGE_PAGES - 1; i++)
		bad += *(uint64_t *)(q + i * PAGE_SIZE) != i * 3 + 1;
	q_pmd_kb = gmem_smaps_kb(q, "FilePmdMapped");
	q_rss_kb = gmem_smaps_kb(q, "Rss");

	/* Zapping one page takes the whole PMD; the next fault maps it whole again. */
	TEST_ASSERT(!madvise(p + 7 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED), "madvise: %d", errno);
	bad += *(uint64_t *)(p + 7 * PAGE_SIZE) != 7 * 3 + 1;
	refault_kb = gmem_smaps_kb(p, "FilePmdMapped");

	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, HPAGE, p, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, HPAGE_PAGES);
	vcpu_args_set(vcpu, 2, TEST_GPA, HPAGE_PAGES);
	m2 = vm_get_stat(vm, "pages_2m");
	gmem_run_to_done(vcpu);
	if (gmem_vmstat("thp_file_alloc") - allocs == 1 && pmd_kb == 2048 && rss_kb == 2048 &&
	    !bad && q_pmd_kb == 0 && q_rss_kb == 2044 && refault_kb == 2048 &&
	    vm_get_stat(vm, "pages_2m") - m2 == 1)
		ksft_test_result_pass("HUGE | MMAP: one 2 MiB folio, one PMD where aligned, %s\n",
				      "4 KiB PTEs elsewhere, 2 MiB for KVM");
	else
		ksft_test_result_fail("folios %lu, PMD %ld/%ld/%ld, Rss %ld/%ld, bad %lu, 2M %lu\n",
				      gmem_vmstat("thp_file_alloc") - allocs, pmd_kb, q_pmd_kb,
				      refault_kb, rss_kb, q_rss_kb, bad,
				      vm_get_stat(vm, "pages_2m") - m2);
	kvm_vm_free(vm);
	munmap(p, HPAGE);
	munmap(alloc, 2 * HPAGE);
	close(fd);
}

int main(int argc, char *argv[])
{
	bool rust = !access("/sys/module/gmem_rs", F_OK);

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	gmem_pin_to_this_cpu();
	/* Huge pages to be had: the counts of huge folios below are exact. */
	gmem_drain_all_lru();

	ksft_print_header();
	ksft_set_plan(rust ? 2 + 3 + 2 + 1 + 1 + 4 + 1 + 1 + 1 + 1 : 2 + 1);
	test_flags(rust);
	test_mfd_huge();
	if (rust) {
		test_map_convert_punch();
		test_punch_ranges();
		test_tail();
		test_misaligned_slot();
		test_populate();
		test_hwpoison();
		test_hwpoison_unsplit();
		test_fragmentation();
		test_punch_while_running();
		test_allocation_race();
		test_mapped_huge();
	}
	ksft_finished();
}
