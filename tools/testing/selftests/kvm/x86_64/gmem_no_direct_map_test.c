// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_no_direct_map_test: GUEST_MEMFD_FLAG_NO_DIRECT_MAP, against
 * whichever backend creates guest_memfds.
 *
 * The capability lists the flag on both VM types, and it changes no other
 * flag's answer. A page leaves the kernel's direct map when it is first
 * used (the VMM's fault, a guest's, KVM's) and comes back, zeroed, when it
 * is freed (punch, release), but a poisoned one: the test module reads it
 * through the direct map without faulting (GMEM_PROBE_TEST), and a plain
 * file's page is the control. Populate refuses such files. GUP of the
 * mapping fails (/proc/self/mem, whose remote access ptrace and
 * process_vm_readv share: EIO; vmsplice: EFAULT) where a plain copy works.
 * A default VM whose whole memory is one such file runs with kvm-clock and
 * steal time in it: KVM writes both (its pfn cache maps the clock's page
 * from the file, not through the direct map), the clock advances, steal
 * time counts a vCPU thread kept off its CPU, and a punch of the clock's
 * page reaches KVM's cache. The same VM runs a nested guest: KVM maps its
 * VMCB with kvm_vcpu_map(), from the file. Hibernation is refused while
 * any page is out (/sys/power/disk says "[disabled]"), and allowed again
 * once none is. With gmem_rs's huge flag: 2 MiB folios leave whole,
 * keeping the direct map's 2 MiB entries.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>
#include <asm/kvm_para.h>
#include <asm/pvclock.h>
#include <asm/pvclock-abi.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_util.h"
#include "test_util.h"

#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
#define NDM		GUEST_MEMFD_FLAG_NO_DIRECT_MAP
#define HUGE		GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD
#define NPAGES		4
#define SIZE		(NPAGES * PAGE_SIZE)
#define TEST_GPA	0xc0000000ul
#define TEST_SLOT	10
#define KS		FALLOC_FL_KEEP_SIZE
#define PH		FALLOC_FL_PUNCH_HOLE

static int probe_dev;

#define probe(fd, off, pfn)	gmem_probe(probe_dev, fd, off, pfn)
#define probe_pfn(pfn)		gmem_probe_pfn(probe_dev, pfn)

static int create(struct kvm_vm *vm, uint64_t size, uint64_t flags)
{
	int fd = __vm_create_guest_memfd(vm, size, flags);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static void *map(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	return p;
}

/* Listed on both VM types and system-wide; adds no rule to the other flags. */
static void test_flags(unsigned long type, const char *name)
{
	static const uint64_t bases[] = { 0, MMAP, SHARED, MMAP | SHARED, HUGE };
	struct kvm_vm *vm = vm_create_barebones_type(type);
	uint64_t valid = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	int i, with, without, bad = -1;

	for (i = 0; i < ARRAY_SIZE(bases) && bad < 0; i++) {
		without = create(vm, PAGE_SIZE, bases[i]);
		with = create(vm, PAGE_SIZE, bases[i] | NDM);
		if (with != without)
			bad = i;
	}
	if (!(valid & NDM) || !(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & NDM))
		ksft_test_result_fail("%s VM: no NO_DIRECT_MAP in %#lx (system-wide %#x)\n",
				      name, valid, kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS));
	else if (bad >= 0)
		ksft_test_result_fail("%s VM: flags %#lx: %d, with NO_DIRECT_MAP %d\n", name,
				      bases[bad], without, with);
	else
		ksft_test_result_pass("%s VM: listed (%#lx), alone, with MMAP, INIT_SHARED, HUGE\n",
				      name, valid);
	kvm_vm_free(vm);
}

/*
 * The host's first touch takes a page out; allocation alone does not (it
 * holds nothing yet); a punch and the release put pages back, a poisoned
 * page stays out. A plain file's page reads through the direct map.
 */
static void test_host_pages(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, NDM | MMAP | SHARED);
	int plain = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE), *q = map(plain, SIZE);
	uint64_t pfn[NPAGES], plain_pfn;
	int before, used, control, allocated, punched, poisoned, released, others;

	before = probe(fd, 0, NULL);
	memset(p, 0x5a, PAGE_SIZE);
	memset(p + 2 * PAGE_SIZE, 0x5a, 2 * PAGE_SIZE);
	q[0] = 1;
	used = probe(fd, 0, &pfn[0]);
	control = probe(plain, 0, &plain_pfn);
	TEST_ASSERT(!fallocate(fd, KS, PAGE_SIZE, PAGE_SIZE), "fallocate: errno %d", errno);
	allocated = probe(fd, PAGE_SIZE, &pfn[1]);
	TEST_ASSERT(probe(fd, 2 * PAGE_SIZE, &pfn[2]) == 0 &&
		    probe(fd, 3 * PAGE_SIZE, &pfn[3]) == 0,
		    "pages 2 and 3 in the direct map after the host wrote them");
	TEST_ASSERT(!fallocate(fd, KS | PH, 0, PAGE_SIZE), "punch: errno %d", errno);
	punched = probe_pfn(pfn[0]);

	/* A memory error in page 3: it stays out, even freed. */
	gmem_corrupt_pfn(pfn[3]);
	poisoned = probe_pfn(pfn[3]);

	munmap(p, SIZE);
	close(fd);
	released = probe_pfn(pfn[2]);
	others = probe_pfn(pfn[3]);
	if (before == -ENOENT && used == 0 && control == 1 && allocated == 1 && punched == 1 &&
	    released == 1 && others == 0)
		ksft_test_result_pass("first touch zaps; punch, release restore; poison stays\n");
	else
		ksft_test_result_fail("%d %d plain %d allocated %d punched %d poison %d %d %d\n",
				      before, used, control, allocated, punched, poisoned, released,
				      others);
	munmap(q, SIZE);
	close(plain);
}

/* GUP of the mapping fails; copies through it work. */
static void test_gup(struct kvm_vm *vm)
{
	int fd = vm_create_guest_memfd(vm, SIZE, NDM | MMAP | SHARED);
	int plain = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	char *p = map(fd, SIZE), *q = map(plain, SIZE);
	char local[PAGE_SIZE];
	struct iovec riov = { p, PAGE_SIZE };
	struct iovec qiov = { q, PAGE_SIZE };
	long vm_read, vm_read_plain, spliced, spliced_plain, copied;
	int vm_read_err, spliced_err, pipefd[2], mem;

	memset(p, 0x11, PAGE_SIZE);
	memset(q, 0x22, PAGE_SIZE);
	mem = open("/proc/self/mem", O_RDONLY);
	TEST_ASSERT(mem >= 0, "/proc/self/mem: errno %d", errno);
	vm_read = pread(mem, local, PAGE_SIZE, (off_t)p);
	vm_read_err = errno;
	vm_read_plain = pread(mem, local, PAGE_SIZE, (off_t)q);
	close(mem);
	TEST_ASSERT(!pipe(pipefd), "pipe");
	spliced = vmsplice(pipefd[1], &riov, 1, 0);
	spliced_err = errno;
	spliced_plain = vmsplice(pipefd[1], &qiov, 1, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	TEST_ASSERT(!pipe(pipefd), "pipe");
	copied = write(pipefd[1], p, 64);
	TEST_ASSERT(read(pipefd[0], local, 64) == 64 && local[0] == 0x11, "read back the copy");
	close(pipefd[0]);
	close(pipefd[1]);
	if (vm_read == -1 && vm_read_err == EIO && vm_read_plain == PAGE_SIZE &&
	    spliced == -1 && spliced_err == EFAULT && spliced_plain == PAGE_SIZE && copied == 64)
		ksft_test_result_pass("GUP refused (/proc/pid/mem EIO, vmsplice EFAULT)\n");
	else
		ksft_test_result_fail("mem %ld (%d), plain %ld; vmsplice %ld (%d), %ld; %ld\n",
				      vm_read, vm_read_err, vm_read_plain, spliced, spliced_err,
				      spliced_plain, copied);
	munmap(p, SIZE);
	munmap(q, SIZE);
	close(fd);
	close(plain);
}

/* 1 if /sys/power/disk says hibernation is refused, 0 if not, -1 without it. */
static int hibernation_refused(void)
{
	char buf[128] = "";
	int fd = open("/sys/power/disk", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	TEST_ASSERT(n > 0, "read /sys/power/disk: errno %d", errno);
	return !!strstr(buf, "[disabled]");
}

/*
 * Refused while a page is out of the direct map (a hibernation image would
 * hold it), as while secretmem is in use; a plain file's page is the
 * control, and a punch or the release allows it again.
 */
static void test_hibernation(struct kvm_vm *vm)
{
	int before = hibernation_refused(), plain_used, used, punched, again, released;
	int fd, plain;
	char *p, *q;

	if (before < 0) {
		ksft_test_result_skip("hibernation: no /sys/power/disk (CONFIG_HIBERNATION)\n");
		return;
	}
	if (before) {
		ksft_test_result_skip("hibernation: refused before the test\n");
		return;
	}
	fd = vm_create_guest_memfd(vm, SIZE, NDM | MMAP | SHARED);
	plain = vm_create_guest_memfd(vm, SIZE, MMAP | SHARED);
	p = map(fd, SIZE);
	q = map(plain, SIZE);
	q[0] = 1;
	plain_used = hibernation_refused();
	p[0] = 1;
	p[PAGE_SIZE] = 1;
	used = hibernation_refused();
	TEST_ASSERT(!fallocate(fd, KS | PH, 0, SIZE), "punch: errno %d", errno);
	punched = hibernation_refused();
	p[0] = 1;
	again = hibernation_refused();
	munmap(p, SIZE);
	close(fd);
	released = hibernation_refused();
	if (!plain_used && used == 1 && !punched && again == 1 && !released)
		ksft_test_result_pass("hibernation refused while pages are out, then allowed\n");
	else
		ksft_test_result_fail("hibernation: plain %d, used %d, punched %d, %d, %s %d\n",
				      plain_used, used, punched, again, "released", released);
	munmap(q, SIZE);
	close(plain);
}

/*
 * kvm_gmem_populate() refuses such a file (EINVAL): its callbacks write
 * through the direct map with the folio unlocked, and it serves VM types
 * (SEV-SNP, TDX) that never have one. A plain file is the control.
 */
static void test_populate(void)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int fd = vm_create_guest_memfd(vm, SIZE, NDM);
	int plain = vm_create_guest_memfd(vm, SIZE, 0);
	void *anon = mmap(NULL, 2 * SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct gmem_populate_test_args args = {
		.vm_fd = vm->fd, .gfn = TEST_GPA >> PAGE_SHIFT, .npages = 1,
	};
	long refused, filled;
	int e;

	TEST_ASSERT(anon != MAP_FAILED, "mmap");
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, SIZE, anon, fd, 0);
	vm_set_user_memory_region2(vm, TEST_SLOT + 1, KVM_MEM_GUEST_MEMFD, TEST_GPA + SIZE, SIZE,
				   anon + SIZE, plain, 0);
	/* In place, the files' pages are private already; the VM has no attributes. */
	if (!gmem_in_place())
		vm_mem_set_private(vm, TEST_GPA, 2 * SIZE);
	refused = ioctl(probe_dev, GMEM_POPULATE_TEST, &args);
	e = errno;
	args.gfn = (TEST_GPA + SIZE) >> PAGE_SHIFT;
	filled = ioctl(probe_dev, GMEM_POPULATE_TEST, &args);
	if (refused == -1 && e == EINVAL && filled == 1)
		ksft_test_result_pass("populate refuses the file (EINVAL), fills a plain one\n");
	else
		ksft_test_result_fail("populate %ld (errno %d), plain file %ld\n", refused, e,
				      filled);
	close(fd);
	close(plain);
	munmap(anon, 2 * SIZE);
	kvm_vm_free(vm);
}

/* kvm_gmem_get_pfn() of @gfn, as a fault: the pfn, its reference dropped. */
static uint64_t fault_in(struct kvm_vm *vm, uint64_t gfn, bool keep)
{
	struct gmem_hold_test_args args = { .vm_fd = vm->fd, .gfn = gfn };

	TEST_ASSERT(!ioctl(probe_dev, GMEM_HOLD_TEST, &args), "hold gfn %#lx: errno %d", gfn,
		    errno);
	if (!keep)
		TEST_ASSERT(!ioctl(probe_dev, GMEM_RELEASE_TEST), "release: errno %d", errno);
	return args.pfn;
}

#define meminfo_kb(field)	gmem_meminfo_kb(field)

#define HUGE_SIZE	(2ul << 20)
#define HUGE_BLOCKS	8
#define HUGE_GPA	0x100000000ul
#define SMALL_GPA	0x140000000ul

/*
 * gmem_rs's 2 MiB folios out of the direct map: each leaves in one change,
 * so the direct map keeps its 2 MiB entries (DirectMap4k does not grow, and
 * a block that had a 2 MiB entry keeps it), where a 4 KiB folio's page sits
 * on a 4 KiB entry; a 4 KiB punch splits the folio and restores that page
 * alone, splitting its entry; a punch of a folio that cannot split (a held
 * reference) zeroes the page in place and keeps it out; release restores
 * the rest. Earlier tests leave parts of the direct map split for good, so
 * the punch is made in a block the probe saw on a 2 MiB entry.
 */
static void test_huge(void)
{
	const uint64_t bytes = HUGE_BLOCKS * HUGE_SIZE;
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	int huge = vm_create_guest_memfd(vm, bytes, HUGE | NDM);
	int small = vm_create_guest_memfd(vm, bytes, NDM);
	void *anon = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long k4_0, k4_1, k4_2, k4_3, m2_0, m2_1, entry;
	uint64_t pfn[HUGE_BLOCKS], i, gfn, small_pfn;
	int out_first = 1, out_last = 1, small_4k = 1, whole = 0, w = -1, held;
	int punched = -1, neighbour = -1, split = 0, zeroed = -1, released;

	TEST_ASSERT(anon != MAP_FAILED, "mmap");
	vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, HUGE_GPA, bytes, anon,
				   huge, 0);
	vm_set_user_memory_region2(vm, TEST_SLOT + 1, KVM_MEM_GUEST_MEMFD, SMALL_GPA, bytes,
				   anon + bytes, small, 0);
	if (!gmem_in_place()) {
		vm_mem_set_private(vm, HUGE_GPA, bytes);
		vm_mem_set_private(vm, SMALL_GPA, bytes);
	}

	k4_0 = meminfo_kb("DirectMap4k:");
	m2_0 = meminfo_kb("DirectMap2M:");
	for (i = 0; i < HUGE_BLOCKS; i++) {
		pfn[i] = fault_in(vm, (HUGE_GPA + i * HUGE_SIZE) >> PAGE_SHIFT, false);
		out_first &= probe_pfn(pfn[i]) == 0;
		out_last &= probe_pfn(pfn[i] + HUGE_SIZE / PAGE_SIZE - 1) == 0;
		entry = gmem_direct_map_entry_kb(probe_dev, pfn[i]);
		TEST_ASSERT(entry > 0, "direct-map entry of pfn %#lx: %ld", pfn[i], entry);
		if (entry >= HUGE_SIZE >> 10) {
			whole++;
			if (w < 0)
				w = i;
		}
	}
	k4_1 = meminfo_kb("DirectMap4k:");
	m2_1 = meminfo_kb("DirectMap2M:");
	for (gfn = SMALL_GPA >> PAGE_SHIFT; gfn < (SMALL_GPA + bytes) >> PAGE_SHIFT; gfn++) {
		small_pfn = fault_in(vm, gfn, false);
		small_4k &= gmem_direct_map_entry_kb(probe_dev, small_pfn) == 4;
	}
	k4_2 = meminfo_kb("DirectMap4k:");

	/* Block w: split by a 4 KiB punch, and its 2 MiB entry with it. */
	if (w >= 0) {
		TEST_ASSERT(!fallocate(huge, KS | PH, w * HUGE_SIZE + PAGE_SIZE, PAGE_SIZE),
			    "punch");
		punched = probe_pfn(pfn[w] + 1);
		neighbour = probe_pfn(pfn[w] + 2);
		split = gmem_direct_map_entry_kb(probe_dev, pfn[w] + 1) == 4;
	}
	k4_3 = meminfo_kb("DirectMap4k:");
	/* Another block: a held reference keeps it whole; the punched page is zeroed in place. */
	held = (w + 1) % HUGE_BLOCKS;
	fault_in(vm, (HUGE_GPA + held * HUGE_SIZE) >> PAGE_SHIFT, true);
	TEST_ASSERT(!fallocate(huge, KS | PH, held * HUGE_SIZE + PAGE_SIZE, PAGE_SIZE),
		    "punch of a held folio: errno %d", errno);
	zeroed = probe_pfn(pfn[held] + 1);
	TEST_ASSERT(!ioctl(probe_dev, GMEM_RELEASE_TEST), "release");

	kvm_vm_free(vm);
	close(huge);
	close(small);
	munmap(anon, 2 * bytes);
	released = probe_pfn(pfn[0]) == 1 && probe_pfn(pfn[HUGE_BLOCKS - 1] + 1) == 1;
	ksft_print_msg("DirectMap4k %ld kB: +%ld for %lu MiB in 2 MiB folios, +%ld in 4 KiB\n",
		       k4_0, k4_1 - k4_0, bytes >> 20, k4_2 - k4_1);
	ksft_print_msg("DirectMap2M %ld kB -> %ld kB for the 2 MiB folios\n", m2_0, m2_1);
	ksft_print_msg("%d of %d blocks on 2 MiB entries when out; a 4 KiB punch: +%ld kB\n",
		       whole, HUGE_BLOCKS, k4_3 - k4_2);
	if (out_first && out_last && k4_1 == k4_0 && whole && small_4k && punched == 1 &&
	    neighbour == 0 && split && k4_3 - k4_2 >= (HUGE_SIZE >> 10) && zeroed == 0 &&
	    released)
		ksft_test_result_pass("2 MiB folios: out whole, no 4 KiB split; punch, release\n");
	else
		ksft_test_result_fail("out %d %d +%ld whole %d 4k %d punch %d %d %d +%ld, %d %d\n",
				      out_first, out_last, k4_1 - k4_0, whole, small_4k, punched,
				      neighbour, split, k4_3 - k4_2, zeroed, released);
}

/* A page of its own: the host punches it. */
static struct pvclock_vcpu_time_info pvclock __aligned(4096);
static struct kvm_steal_time steal __aligned(64);
static uint64_t stop_spinning;
static uint64_t clock_gpa, steal_gpa;	/* set by the host */

/*
 * Stage 1: kvm-clock and steal time on. Stage 2: the clock again, after the
 * host slept. Stage 3: spin until the host, which kept this vCPU's thread
 * off its CPU meanwhile, says stop; report steal time. Stage 4: the clock
 * once more, after the host punched its page and updated the clock.
 */
static void guest_clock(void)
{
	uint64_t t1, t2;

	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, clock_gpa | KVM_MSR_ENABLED);
	wrmsr(MSR_KVM_STEAL_TIME, steal_gpa | KVM_MSR_ENABLED);
	t1 = __pvclock_read_cycles(&pvclock, rdtsc());
	GUEST_SYNC_ARGS(1, t1, 0, 0, 0);
	t2 = __pvclock_read_cycles(&pvclock, rdtsc());
	GUEST_SYNC_ARGS(2, t1, t2, READ_ONCE(steal.version), 0);
	while (!READ_ONCE(stop_spinning))
		cpu_relax();
	GUEST_SYNC_ARGS(3, READ_ONCE(steal.steal), READ_ONCE(steal.version), 0, 0);
	/* Stage 4: the host punched the clock's page; KVM wrote the new one. */
	GUEST_SYNC_ARGS(4, __pvclock_read_cycles(&pvclock, rdtsc()), READ_ONCE(pvclock.version),
			0, 0);
	GUEST_DONE();
}

static void *hog(void *arg)
{
	uint64_t until = *(uint64_t *)arg;
	struct timespec ts;

	do
		clock_gettime(CLOCK_MONOTONIC, &ts);
	while (ts.tv_sec * 1000000000ull + ts.tv_nsec < until);
	return NULL;
}

struct run_args {
	struct kvm_vcpu *vcpu;
	struct ucall uc;
};

static void *run_vcpu(void *arg)
{
	struct run_args *r = arg;

	vcpu_run(r->vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(r->vcpu, KVM_EXIT_IO);
	get_ucall(r->vcpu, &r->uc);
	return NULL;
}

static void pin(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(!pthread_setaffinity_np(t, sizeof(set), &set), "affinity to CPU %d", cpu);
}

#define WHOLE_PAGES	1024ul
#define WHOLE_BYTES	(WHOLE_PAGES * PAGE_SIZE)

/*
 * A default VM whose whole memory, code, page tables, stack and all, is
 * one NO_DIRECT_MAP | MMAP | INIT_SHARED file @fd at gpa 0 (as
 * gmem_mmap_test's whole-RAM case, and as a secret-free VMM runs). It is
 * built in anonymous memory: whole_vm_move() moves it into the file.
 */
static struct kvm_vm *whole_vm_create(int *fd)
{
	struct kvm_vm *vm = ____vm_create(VM_SHAPE_DEFAULT);

	*fd = vm_create_guest_memfd(vm, WHOLE_BYTES, NDM | MMAP | SHARED);
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, 0, 0, WHOLE_PAGES, KVM_MEM_GUEST_MEMFD, *fd, 0);
	gmem_vm_finish_create(vm, WHOLE_BYTES);
	return vm;
}

/*
 * As a secret-free VMM: the guest is built in other memory (read() of the
 * ELF into the file's mapping would fail: the 9p client pins its buffer),
 * copied into the file, and the file mapped in its place.
 */
static void whole_vm_move(struct kvm_vm *vm, int fd)
{
	struct userspace_mem_region *slot0 = memslot2region(vm, 0);
	void *view = map(fd, WHOLE_BYTES);

	memcpy(view, slot0->host_mem, WHOLE_BYTES);
	munmap(view, WHOLE_BYTES);
	TEST_ASSERT(mmap(slot0->host_mem, WHOLE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, 0) == slot0->host_mem,
		    "mmap over slot 0: errno %d", errno);
}

/* A whole-memory VM (above) with kvm-clock and steal time in it. */
static void test_guest_clock(void)
{
	struct run_args r = { 0 };
	int fd;
	struct kvm_vm *vm = whole_vm_create(&fd);
	uint64_t t1, t2, v2, stolen, v3, until, t4, v4;
	struct kvm_clock_data data = { 0 };
	struct timespec ts;
	pthread_t vcpu_thread, hog_thread;

	r.vcpu = vm_vcpu_add(vm, 0, guest_clock);
	clock_gpa = addr_gva2gpa(vm, (vm_vaddr_t)&pvclock);
	steal_gpa = addr_gva2gpa(vm, (vm_vaddr_t)&steal);
	sync_global_to_guest(vm, clock_gpa);
	sync_global_to_guest(vm, steal_gpa);
	whole_vm_move(vm, fd);

	gmem_run_to_sync(r.vcpu, 1);
	usleep(20 * 1000);
	vcpu_run(r.vcpu);
	TEST_ASSERT_EQ(get_ucall(r.vcpu, &r.uc), UCALL_SYNC);
	t1 = r.uc.args[2];
	t2 = r.uc.args[3];
	v2 = r.uc.args[4];

	/* Stage 3: vCPU and hog on one CPU for 200 ms, then stop the guest. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	until = ts.tv_sec * 1000000000ull + ts.tv_nsec + 200 * 1000000ull;
	TEST_ASSERT(!pthread_create(&vcpu_thread, NULL, run_vcpu, &r), "vCPU thread");
	pin(vcpu_thread, 0);
	TEST_ASSERT(!pthread_create(&hog_thread, NULL, hog, &until), "hog thread");
	pin(hog_thread, 0);
	pthread_join(hog_thread, NULL);
	WRITE_ONCE(*(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&stop_spinning), 1);
	pthread_join(vcpu_thread, NULL);
	TEST_ASSERT(r.uc.cmd == UCALL_SYNC && r.uc.args[1] == 3, "stage 3: ucall %lu",
		    r.uc.cmd);
	stolen = r.uc.args[2];
	v3 = r.uc.args[3];

	/*
	 * Stage 4: the page the pfn cache maps is freed; guest_memfd's
	 * invalidation must reach the cache, or KVM writes the freed page and
	 * the guest reads a new, zeroed one.
	 */
	TEST_ASSERT(!fallocate(fd, KS | PH, clock_gpa, PAGE_SIZE), "punch: errno %d", errno);
	vm_ioctl(vm, KVM_GET_CLOCK, &data);
	data.flags = 0;
	vm_ioctl(vm, KVM_SET_CLOCK, &data);
	vcpu_run(r.vcpu);
	TEST_ASSERT_EQ(get_ucall(r.vcpu, &r.uc), UCALL_SYNC);
	t4 = r.uc.args[2];
	v4 = r.uc.args[3];
	gmem_run_to_done(r.vcpu);

	ksft_print_msg("after the punch: clock %lu ns, version %lu\n", t4, v4);
	if (t1 && t2 >= t1 + 20 * 1000000ull && v2 && !(v2 & 1) && v3 > v2 && stolen &&
	    t4 > t2 && v4 && !(v4 & 1))
		ksft_test_result_pass("whole guest: clock %lu -> %lu, steal %lu (%lu -> %lu)\n",
				      t1, t2, stolen, v2, v3);
	else
		ksft_test_result_fail("clock %lu -> %lu -> %lu, steal %lu (%lu -> %lu)\n",
				      t1, t2, t4, stolen, v2, v3);
	close(fd);
	kvm_vm_free(vm);
}

static void l2_guest(struct svm_test_data *svm)
{
	__asm__ __volatile__("vmmcall");
}

static void guest_nested(struct svm_test_data *svm)
{
	unsigned long l2_stack[64];

	generic_svm_setup(svm, l2_guest, &l2_stack[64]);
	run_guest(svm->vmcb, svm->vmcb_gpa);
	GUEST_ASSERT_EQ(svm->vmcb->control.exit_code, SVM_EXIT_VMMCALL);
	GUEST_DONE();
}

/*
 * A whole-memory VM runs a nested guest: VMRUN, VMLOAD and VMSAVE map its
 * VMCB with kvm_vcpu_map(), which takes the page from the file and vmap()s
 * it (GUP of the VMM's mapping is refused).
 */
static void test_nested(void)
{
	struct kvm_vcpu *vcpu;
	vm_vaddr_t svm_gva;
	struct kvm_vm *vm;
	uint64_t vmcb_gpa, ucall;
	struct ucall uc;
	int fd, out;
	__u32 exit;

	if (!kvm_cpu_has(X86_FEATURE_SVM)) {
		ksft_test_result_skip("nested: no SVM for guests\n");
		return;
	}
	vm = whole_vm_create(&fd);
	vcpu = vm_vcpu_add(vm, 0, guest_nested);
	vmcb_gpa = vcpu_alloc_svm(vm, &svm_gva)->vmcb_gpa;
	vcpu_args_set(vcpu, 1, svm_gva);
	whole_vm_move(vm, fd);
	/* The VMCB is the file's page at its gpa, out of the direct map. */
	out = probe(fd, vmcb_gpa, NULL);
	/* Without kvm_vcpu_map() of the file's page, VMRUN takes a #GP (the library fails). */
	vcpu_run(vcpu);
	exit = vcpu->run->exit_reason;
	ucall = exit == KVM_EXIT_IO ? get_ucall(vcpu, &uc) : 0;
	if (ucall == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	if (!out && ucall == UCALL_DONE)
		ksft_test_result_pass("nested: VMRUN with the VMCB out of the direct map\n");
	else
		ksft_test_result_fail("nested: the VMCB's page probes %d; exit %u, ucall %lu\n",
				      out, exit, ucall);
	close(fd);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	bool huge = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & HUGE;
	struct kvm_vm *vm;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & NDM);
	probe_dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(probe_dev >= 0, "%s: errno %d (kvm_gmem_populate_test loaded?)",
		    GMEM_POPULATE_DEV, errno);

	ksft_print_header();
	/* The 2 MiB case where the backend lists its huge flag (gmem_rs). */
	ksft_set_plan(8 + huge);
	test_flags(KVM_X86_DEFAULT_VM, "default");
	test_flags(KVM_X86_SW_PROTECTED_VM, "software-protected");
	vm = vm_create_barebones();
	test_host_pages(vm);
	test_gup(vm);
	test_hibernation(vm);
	kvm_vm_free(vm);
	test_populate();
	test_guest_clock();
	test_nested();
	if (huge)
		test_huge();
	ksft_finished();
}
