// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_bench: time guest_memfd workloads against whichever backend
 * creates guest_memfds (KVM's built-in one, or gmem_rs while loaded).
 *
 *   gmem_bench -b LABEL [-a MiB] [-s MiB]
 *              [-w allocate|fault|memfd|scaling|mmap|huge|secret|roundtrip|shared]
 *
 * Prints one line per workload:
 *   BENCH backend=LABEL workload=NAME mib=N ms=T leaked_kb=K
 * leaked_kb is how much more memory the workloads' own kinds use
 * (Unevictable: guest_memfd; AnonPages: anonymous guest memory) once the
 * workload's objects are gone than before it started: it must be ~0.
 *
 *   allocate       fallocate() of a fresh guest_memfd of -a MiB (4096)
 *   fault-in       a vCPU touches every page of a private range of -s MiB
 *                  (512) for the first time
 *   punch-4k       punch that range 4 KiB at a time while it is bound and
 *                  mapped into the guest (the TDP zap path)
 *   convert-4k     private->shared->private, one 4 KiB page per ioctl,
 *                  over the mapped range
 *   convert-large  the whole mapped range private->shared->private, 16 times
 *   floor          the guest touches as much anonymous (shared) memory:
 *                  the same work with no guest_memfd at all
 *   floor-allocate -a MiB of pages allocated by the kernel's page allocator
 *                  with no file at all: the floor of allocate (needs
 *                  kvm_gmem_bench_floor.ko; the rows are left out without it)
 *   floor-allocate-zero  -s MiB of them, each zeroed as a first fault does:
 *                  part of fault-in's cost (6.12's fallocate does not zero)
 *   fault-in-vN    fault-in with N vCPUs (2, and the CPU count if more),
 *                  each touching its own 1/N of the range
 *   host-write     the VMM writes every page of a mapped guest_memfd of -s
 *                  MiB (GUEST_MEMFD_FLAG_MMAP | _INIT_SHARED) for the first
 *                  time: the host's first-touch fault;
 *   huge-host-write   the same with HUGE_PMD (gmem_rs): 2 MiB folios, each
 *                  mapped by one PMD (pmd_maps=, from thp_file_mapped)
 *   shmem-host-write  the same on a plain shmem memfd: its floor
 *
 * -w huge: with GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD (2 MiB folios; gmem_rs
 * only: the rows are left out where the backend does not take the flag):
 *   huge-allocate  as allocate
 *   huge-fault-in  as fault-in, on a slot KVM can map 2 MiB; the row adds
 *                  the VM's pages_2m and pages_4k after it, and the
 *                  thp_file_fallback events (4 KiB folios for lack of a huge
 *                  page) it caused
 *   huge-punch-4k  as punch-4k: the first punch in each huge page splits it
 *   huge-punch-alt every other 4 KiB page of the faulted-in range; the row
 *                  adds returned_kb, the memory that came back (half the
 *                  range, if splitting frees what is punched)
 *
 * -w secret: secret-free memory (GUEST_MEMFD_FLAG_NO_DIRECT_MAP, _WRITE;
 * the rows are left out where the backend does not take the flags):
 *   ndm-fault-in   as fault-in, the file NO_DIRECT_MAP: each page leaves
 *                  the direct map at its first fault (against fault-in); the
 *                  row adds how much the direct map's 4 KiB, 2 MiB and 1 GiB
 *                  entries grew (kB) while the range was faulted in
 *   huge-ndm-fault-in  as huge-fault-in, NO_DIRECT_MAP: each 2 MiB folio
 *                  leaves at once (against huge-fault-in); the same counts
 *   populate-memcpy  the VMM fills a fresh MMAP | INIT_SHARED | WRITE file
 *                  of -s MiB by memcpy() into its mapping, from a buffer
 *   populate-write   the same by one pwrite() of the buffer
 *   populate-memcpy-ndm, populate-write-ndm  both, NO_DIRECT_MAP too
 *
 * -w roundtrip: a guest's page (4k) or 2 MiB block (2m, HUGE_PMD files)
 * converted private -> shared -> private, the guest touching it after each
 * step, as often as it can in about a second (rate= round trips per second):
 *   roundtrip-punch-4k, -2m    6.12's flow (kvm.gmem_in_place_conversion
 *                  off): the VM's KVM_SET_MEMORY_ATTRIBUTES, then the stale
 *                  copy discarded (punch the file; MADV_DONTNEED the VMM's
 *                  memory), then the guest's refault allocates it again
 *   roundtrip-inplace-4k, -2m  in place (the parameter on; gmem_rs):
 *                  KVM_SET_MEMORY_ATTRIBUTES2 on the file, nothing freed;
 *                  the file is MMAP, so shared pages are the file's too
 *
 * -w shared: memory the VMM maps, on a VM without private memory:
 *   shared-fault-in       as fault-in, the file MMAP | INIT_SHARED (the
 *                  guest's faults served from the file: a guest_memfd-only
 *                  slot); the row adds the VM's pages_2m and pages_4k
 *   huge-shared-fault-in  the same with HUGE_PMD (gmem_rs): 2 MiB folios
 *
 * -w scaling: allocate at -a/8, -a/4 and -a/2, fault-in and punch-4k at
 * -s/4, -s/2 and 2*-s (with the default sizes, the rows at -a and -s make
 * four sizes of each): the cost per page must stay flat.
 *
 * The same on memfd_create(MFD_INACCESSIBLE) files (memfd_inaccessible.ko
 * must be loaded; they do not depend on the guest_memfd backend), against
 * plain shmem memfds as their floor:
 *   mfd-allocate, shmem-allocate     fallocate() of -a MiB
 *   mfd-fault-in, mfd-punch-4k       as fault-in and punch-4k, with the
 *                                    memfd as the memslot's private memory
 *   shmem-punch-4k                   punch -s MiB of a plain memfd 4 KiB at
 *                                    a time, with no VM
 *
 * GMEM_BENCH_MARK=PROGRAM: run PROGRAM at each clock read, so that an
 * instruction counter outside the guest (a QEMU plugin watching PROGRAM's
 * entry) can tell the timed windows apart. Its runs count in the times.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/wait.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#ifndef MFD_INACCESSIBLE
#define MFD_INACCESSIBLE	0x0020U
#endif

#define BENCH_GPA	0x100000000ul
#define BENCH_SLOT	10

static const char *label = "?";
static const char *only;	/* -w: run only this group of workloads */
static uint64_t alloc_size = 4096ul << 20;
static uint64_t size = 512ul << 20;
/* Flags of the guest_memfds that touch VMs create for their slot. */
static uint64_t gmem_flags;

static void run_mark(void)
{
	static const char *mark;
	static bool looked_up;
	char *argv[2];
	pid_t pid;
	int status;

	if (!looked_up) {
		mark = getenv("GMEM_BENCH_MARK");
		looked_up = true;
	}
	if (!mark)
		return;
	argv[0] = (char *)mark;
	argv[1] = NULL;
	TEST_ASSERT(!posix_spawn(&pid, mark, NULL, NULL, argv, environ), "spawn %s", mark);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
		    "%s failed", mark);
}

static double now_ms(void)
{
	struct timespec ts;

	run_mark();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Memory of the kinds the workloads use: guest_memfd, anonymous, shmem. */
static long used_kb(void)
{
	long kb, total = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Unevictable: %ld kB", &kb) == 1 ||
		    sscanf(line, "AnonPages: %ld kB", &kb) == 1 ||
		    sscanf(line, "Shmem: %ld kB", &kb) == 1)
			total += kb;
	fclose(f);
	return total;
}

/* A row; @extra: more fields, " name=value" each, or "". */
static void report_with(const char *workload, uint64_t bytes, double ms, long before_kb,
			const char *extra)
{
	printf("BENCH backend=%s workload=%s mib=%lu ms=%.1f leaked_kb=%ld%s\n",
	       label, workload, bytes >> 20, ms, used_kb() - before_kb, extra);
	fflush(stdout);
}

static void report(const char *workload, uint64_t bytes, double ms, long before_kb)
{
	report_with(workload, bytes, ms, before_kb, "");
}

/* vCPU i of a VM of n touches the ith 1/n of the range. */
static void guest_touch(uint64_t gva, uint64_t len)
{
	for (;;) {
		for (uint64_t off = 0; off < len; off += PAGE_SIZE)
			WRITE_ONCE(*(uint64_t *)(gva + off), off);
		GUEST_SYNC(0);
	}
}

static void run_touch(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT_EQ(uc.cmd, UCALL_SYNC);
}

/* A memfd of @bytes: MFD_INACCESSIBLE, or plain shmem. */
static int bench_memfd(uint64_t bytes, bool inaccessible)
{
	int fd = memfd_create("gmem_bench", inaccessible ? MFD_INACCESSIBLE : 0);

	TEST_ASSERT(fd >= 0, "memfd_create: errno %d (is memfd_inaccessible loaded?)", errno);
	TEST_ASSERT(!ftruncate(fd, bytes), "ftruncate: errno %d", errno);
	return fd;
}

/*
 * A VM of @nr vCPUs that touch [BENCH_GPA, +bytes) each time they run, each
 * its 1/@nr; private memory from a new guest_memfd, or from @memfd if it is
 * not -1.
 */
static struct kvm_vm *touch_vm_n(struct kvm_vcpu **vcpus, int nr, uint64_t bytes,
				 bool private, int memfd)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = private ? KVM_X86_SW_PROTECTED_VM : VM_TYPE_DEFAULT,
	};
	uint64_t npages = bytes / PAGE_SIZE, share = bytes / nr;
	struct kvm_vm *vm;
	int own_fd = -1;

	/* Slot 0 gets room for the page tables that map the range. */
	vm = __vm_create_with_vcpus(shape, nr, npages, guest_touch, vcpus);
	if (private && memfd < 0 && gmem_flags)
		own_fd = vm_create_guest_memfd(vm, bytes, gmem_flags);
	if (own_fd >= 0)
		memfd = own_fd;
	/* Huge files: the slot's host memory 2 MiB aligned, so that KVM maps 2 MiB. */
	vm_mem_add(vm, own_fd >= 0 ? VM_MEM_SRC_ANONYMOUS_THP : VM_MEM_SRC_ANONYMOUS, BENCH_GPA,
		   BENCH_SLOT, npages, private ? KVM_MEM_GUEST_MEMFD : 0, memfd, 0);
	if (own_fd >= 0)
		close(own_fd);	/* the slot holds its own descriptor */
	virt_map(vm, BENCH_GPA, BENCH_GPA, npages);
	for (int i = 0; i < nr; i++)
		vcpu_args_set(vcpus[i], 2, BENCH_GPA + i * share, share);
	if (private)
		vm_mem_set_private(vm, BENCH_GPA, bytes);
	return vm;
}

static struct kvm_vm *touch_vm(struct kvm_vcpu **vcpu, bool private, int memfd)
{
	return touch_vm_n(vcpu, 1, size, private, memfd);
}

static double time_fallocate(int fd, int mode, uint64_t len, uint64_t step)
{
	double t = now_ms();

	for (uint64_t off = 0; off < len; off += step)
		TEST_ASSERT(!fallocate(fd, mode, off, step), "fallocate: errno %d", errno);
	return now_ms() - t;
}

/* guest_memfd, or with @kind "mfd"/"shmem" a memfd of that kind, of @bytes. */
static void bench_allocate_size(const char *kind, uint64_t bytes)
{
	struct kvm_vm *vm = NULL;
	long before = used_kb();
	char name[32];
	double t;
	int fd;

	if (kind) {
		fd = bench_memfd(bytes, !strcmp(kind, "mfd"));
	} else {
		vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
		fd = vm_create_guest_memfd(vm, bytes, 0);
	}
	t = time_fallocate(fd, FALLOC_FL_KEEP_SIZE, bytes, bytes);
	close(fd);
	if (vm)
		kvm_vm_free(vm);
	snprintf(name, sizeof(name), "%s%sallocate", kind ?: "", kind ? "-" : "");
	report(name, bytes, t, before);
}

static void bench_allocate(const char *kind)
{
	bench_allocate_size(kind, alloc_size);
}

/* Mirrors virt/kvm/gmem_bench/kvm_gmem_bench_floor.c. */
struct gmem_bench_floor_args {
	uint64_t npages;
	uint32_t zero;
	uint32_t pad;
	uint64_t ns;
};

#define GMEM_BENCH_FLOOR	_IOWR('G', 0x71, struct gmem_bench_floor_args)
#define FLOOR_PATH		"/sys/kernel/debug/kvm_gmem_bench_floor"

/* The page allocator alone allocating -a MiB, and zeroing -s MiB, in the kernel. */
static void bench_floor_allocate(void)
{
	int fd = open(FLOOR_PATH, O_RDWR);

	if (fd < 0) {
		printf("# floor-allocate: no %s (load kvm_gmem_bench_floor.ko)\n", FLOOR_PATH);
		return;
	}
	for (uint32_t zero = 0; zero <= 1; zero++) {
		uint64_t bytes = zero ? size : alloc_size;
		struct gmem_bench_floor_args args = {
			.npages = bytes / PAGE_SIZE,
			.zero = zero,
		};
		long before = used_kb();

		TEST_ASSERT(!ioctl(fd, GMEM_BENCH_FLOOR, &args), "GMEM_BENCH_FLOOR: errno %d",
			    errno);
		report(zero ? "floor-allocate-zero" : "floor-allocate", bytes, args.ns / 1e6,
		       before);
	}
	close(fd);
}

/* Punching a plain memfd with nothing mapped: the floor of mfd-punch-4k. */
static void bench_shmem_punch(void)
{
	long before = used_kb();
	int fd = bench_memfd(size, false);
	double p;

	time_fallocate(fd, FALLOC_FL_KEEP_SIZE, size, size);
	p = time_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size, PAGE_SIZE);
	close(fd);
	report("shmem-punch-4k", size, p, before);
}

/* With @mfd, private memory comes from an MFD_INACCESSIBLE memfd. */
static void bench_fault_punch_size(bool mfd, uint64_t bytes)
{
	long before = used_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t, p;
	int fd = mfd ? bench_memfd(bytes, true) : -1;

	vm = touch_vm_n(&vcpu, 1, bytes, true, fd);
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;

	/* Every page was just faulted in, so every punch zaps a mapping. */
	p = now_ms();
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE)
		vm_guest_mem_punch_hole(vm, BENCH_GPA + off, PAGE_SIZE);
	p = now_ms() - p;

	kvm_vm_free(vm);
	if (mfd)
		close(fd);
	report(mfd ? "mfd-fault-in" : "fault-in", bytes, t, before);
	report(mfd ? "mfd-punch-4k" : "punch-4k", bytes, p, before);
}

static void bench_fault_punch(bool mfd)
{
	bench_fault_punch_size(mfd, size);
}

static void *touch_thread(void *vcpu)
{
	run_touch(vcpu);
	return NULL;
}

/* fault-in of -s MiB by @nr vCPUs at once, each its 1/@nr. */
static void bench_fault_vcpus(int nr)
{
	struct kvm_vcpu *vcpus[nr];
	pthread_t threads[nr];
	long before = used_kb();
	struct kvm_vm *vm;
	char name[32];
	double t;

	vm = touch_vm_n(vcpus, nr, size, true, -1);
	t = now_ms();
	for (int i = 0; i < nr; i++)
		TEST_ASSERT(!pthread_create(&threads[i], NULL, touch_thread, vcpus[i]),
			    "pthread_create");
	for (int i = 0; i < nr; i++)
		pthread_join(threads[i], NULL);
	t = now_ms() - t;
	kvm_vm_free(vm);
	snprintf(name, sizeof(name), "fault-in-v%d", nr);
	report(name, size, t, before);
}

static void bench_scaling(void)
{
	for (int div = 8; div >= 2; div /= 2)
		bench_allocate_size(NULL, alloc_size / div);
	bench_fault_punch_size(false, size / 4);
	bench_fault_punch_size(false, size / 2);
	bench_fault_punch_size(false, size * 2);
}

static void bench_convert(void)
{
	long before = used_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t4k, tl;

	vm = touch_vm(&vcpu, true, -1);
	run_touch(vcpu);
	t4k = now_ms();
	for (uint64_t off = 0; off < size; off += PAGE_SIZE)
		vm_mem_set_shared(vm, BENCH_GPA + off, PAGE_SIZE);
	for (uint64_t off = 0; off < size; off += PAGE_SIZE)
		vm_mem_set_private(vm, BENCH_GPA + off, PAGE_SIZE);
	t4k = now_ms() - t4k;

	run_touch(vcpu);
	tl = now_ms();
	for (int i = 0; i < 16; i++) {
		vm_mem_set_shared(vm, BENCH_GPA, size);
		vm_mem_set_private(vm, BENCH_GPA, size);
	}
	tl = now_ms() - tl;
	kvm_vm_free(vm);
	report("convert-4k", size, t4k, before);
	report("convert-large", size, tl, before);
}

/* Writes every page of @fd's first @bytes through a shared mapping, once. */
static double time_host_write(int fd, uint64_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	double t;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	t = now_ms();
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE)
		WRITE_ONCE(*(uint64_t *)(p + off), off);
	t = now_ms() - t;
	TEST_ASSERT(!munmap(p, bytes), "munmap: errno %d", errno);
	return t;
}

/* time_host_write() of a fresh guest_memfd of -s MiB created with @flags. */
static double time_gmem_host_write(uint64_t flags)
{
	struct kvm_vm *vm = vm_create_barebones();
	int fd = vm_create_guest_memfd(vm, size, flags);
	double t = time_host_write(fd, size);

	close(fd);
	kvm_vm_free(vm);
	return t;
}

/* The VMM's first touch of a shared guest_memfd, against shmem's. */
static void bench_host_write(void)
{
	uint64_t flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	long before = used_kb();
	double t;
	int fd;

	if ((kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & flags) != flags) {
		printf("# host-write: the backend does not take MMAP | INIT_SHARED\n");
		return;
	}
	t = time_gmem_host_write(flags);
	report("host-write", size, t, before);

	if (kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD) {
		uint64_t pmds = gmem_vmstat("thp_file_mapped");
		char extra[64];

		before = used_kb();
		t = time_gmem_host_write(flags | GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD);
		snprintf(extra, sizeof(extra), " pmd_maps=%lu",
			 gmem_vmstat("thp_file_mapped") - pmds);
		report_with("huge-host-write", size, t, before, extra);
	}

	before = used_kb();
	fd = bench_memfd(size, false);
	t = time_host_write(fd, size);
	close(fd);
	report("shmem-host-write", size, t, before);
}

static long unevictable_kb(void)
{
	return gmem_meminfo_kb("Unevictable:");
}

/* 2 MiB folios: allocate, fault-in, punches of every page and of every other page. */
static void bench_huge(void)
{
	const uint64_t huge = GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD;
	uint64_t fallback0, m2, m4;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char extra[96];
	double t, p;
	long before, kb;
	int fd, pass;

	if (!(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & huge)) {
		printf("# huge: the backend does not take GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD\n");
		return;
	}
	before = used_kb();
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = vm_create_guest_memfd(vm, alloc_size, huge);
	t = time_fallocate(fd, FALLOC_FL_KEEP_SIZE, alloc_size, alloc_size);
	close(fd);
	kvm_vm_free(vm);
	report("huge-allocate", alloc_size, t, before);

	/* Punch every page, then (pass 1) every other page, of a fresh range. */
	gmem_flags = huge;
	for (pass = 0; pass < 2; pass++) {
		before = used_kb();
		vm = touch_vm_n(&vcpu, 1, size, true, -1);
		m2 = vm_get_stat(vm, "pages_2m");
		m4 = vm_get_stat(vm, "pages_4k");
		fallback0 = gmem_vmstat("thp_file_fallback");
		t = now_ms();
		run_touch(vcpu);
		t = now_ms() - t;
		m2 = vm_get_stat(vm, "pages_2m") - m2;
		m4 = vm_get_stat(vm, "pages_4k") - m4;
		kb = unevictable_kb();
		p = now_ms();
		for (uint64_t off = 0; off < size; off += PAGE_SIZE << pass)
			vm_guest_mem_punch_hole(vm, BENCH_GPA + off, PAGE_SIZE);
		p = now_ms() - p;
		kb -= unevictable_kb();
		kvm_vm_free(vm);
		if (pass == 0) {
			snprintf(extra, sizeof(extra), " pages_2m=%lu pages_4k=%lu fallbacks=%lu",
				 m2, m4, gmem_vmstat("thp_file_fallback") - fallback0);
			report_with("huge-fault-in", size, t, before, extra);
			report("huge-punch-4k", size, p, before);
		} else {
			snprintf(extra, sizeof(extra), " returned_kb=%ld", kb);
			report_with("huge-punch-alt", size, p, before, extra);
		}
	}
	gmem_flags = 0;
}

static double time_populate(uint64_t flags, const char *buf, bool by_write)
{
	struct kvm_vm *vm = vm_create_barebones();
	int fd = vm_create_guest_memfd(vm, size, flags);
	char *p = NULL;
	double t;

	if (!by_write) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	}
	t = now_ms();
	if (by_write)
		for (uint64_t off = 0; off < size;) {
			ssize_t n = pwrite(fd, buf + off, size - off, off);

			TEST_ASSERT(n > 0, "pwrite: %ld, errno %d", n, errno);
			off += n;
		}
	else
		memcpy(p, buf, size);
	t = now_ms() - t;
	if (p)
		TEST_ASSERT(!munmap(p, size), "munmap: errno %d", errno);
	close(fd);
	kvm_vm_free(vm);
	return t;
}

/*
 * Fault-in of a private range of @flags files (as fault-in); @extra gets
 * how much the direct map's 4 KiB, 2 MiB and 1 GiB entries grew (kB).
 */
static double time_fault_in(uint64_t flags, char *extra, size_t len)
{
	static const char *const maps[] = { "DirectMap4k:", "DirectMap2M:", "DirectMap1G:" };
	long before[3], after[3];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t;
	int i;

	gmem_flags = flags;
	vm = touch_vm(&vcpu, true, -1);
	for (i = 0; i < 3; i++)
		before[i] = gmem_meminfo_kb(maps[i]);
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;
	for (i = 0; i < 3; i++)
		after[i] = gmem_meminfo_kb(maps[i]);
	kvm_vm_free(vm);
	gmem_flags = 0;
	snprintf(extra, len, " directmap4k_kb=%+ld directmap2m_kb=%+ld directmap1g_kb=%+ld",
		 after[0] - before[0], after[1] - before[1], after[2] - before[2]);
	return t;
}

/* Secret-free memory: fault-in out of the direct map, and population by write(). */
static void bench_secret(void)
{
	const uint64_t ndm = GUEST_MEMFD_FLAG_NO_DIRECT_MAP;
	const uint64_t huge = GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD;
	const uint64_t mapped = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED |
				GUEST_MEMFD_FLAG_WRITE;
	uint64_t valid = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	long before = used_kb();
	char *buf, extra[128];
	double t;

	if (valid & ndm) {
		t = time_fault_in(ndm, extra, sizeof(extra));
		report_with("ndm-fault-in", size, t, before, extra);
	} else {
		printf("# secret: the backend does not take GUEST_MEMFD_FLAG_NO_DIRECT_MAP\n");
	}
	if ((valid & (ndm | huge)) == (ndm | huge)) {
		before = used_kb();
		t = time_fault_in(huge | ndm, extra, sizeof(extra));
		report_with("huge-ndm-fault-in", size, t, before, extra);
	}
	if ((valid & mapped) != mapped) {
		printf("# secret: the backend does not take MMAP | INIT_SHARED | WRITE\n");
		return;
	}
	/* The source: anonymous memory, every page present, as a snapshot's would be. */
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(buf != MAP_FAILED, "mmap: errno %d", errno);
	for (uint64_t off = 0; off < size; off += 8)
		*(uint64_t *)(buf + off) = off * 0x9e3779b97f4a7c15ull;
	for (int with_ndm = 0; with_ndm <= !!(valid & ndm); with_ndm++) {
		uint64_t flags = mapped | (with_ndm ? ndm : 0);

		before = used_kb();
		t = time_populate(flags, buf, false);
		report(with_ndm ? "populate-memcpy-ndm" : "populate-memcpy", size, t, before);
		before = used_kb();
		t = time_populate(flags, buf, true);
		report(with_ndm ? "populate-write-ndm" : "populate-write", size, t, before);
	}
	TEST_ASSERT(!munmap(buf, size), "munmap: errno %d", errno);
}

static void convert(int fd, uint64_t len, uint64_t attrs)
{
	int r = gmem_set_attributes(fd, 0, len, attrs, NULL);

	TEST_ASSERT(!r, "KVM_SET_MEMORY_ATTRIBUTES2: %d", r);
}

/* Round trips of @len (a page or a 2 MiB block) for about a second. */
static void bench_roundtrip_one(uint64_t len, bool in_place)
{
	const struct vm_shape shape = { .mode = VM_MODE_DEFAULT, .type = KVM_X86_SW_PROTECTED_VM };
	const uint64_t private = KVM_MEMORY_ATTRIBUTE_PRIVATE;
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	bool huge = len > PAGE_SIZE;
	uint64_t flags = (huge ? GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD : 0) |
			 (in_place ? GUEST_MEMFD_FLAG_MMAP : 0);
	long before = used_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = __vm_create_with_vcpus(shape, 1, 0, guest_touch, &vcpu);
	int fd = vm_create_guest_memfd(vm, len, flags);
	char *alloc = NULL, *hva;
	char name[64], extra[64];
	double t, elapsed = 0;
	uint64_t n = 0;

	if (flags & GUEST_MEMFD_FLAG_MMAP) {
		hva = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		TEST_ASSERT(hva != MAP_FAILED, "mmap: errno %d", errno);
	} else {
		/* The VMM's shared memory, 2 MiB aligned: KVM may map it 2 MiB. */
		alloc = mmap(NULL, len + (2ul << 20), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(alloc != MAP_FAILED, "mmap: errno %d", errno);
		hva = (char *)(((uintptr_t)alloc + (2ul << 20) - 1) & ~((2ul << 20) - 1));
	}
	vm_set_user_memory_region2(vm, BENCH_SLOT, KVM_MEM_GUEST_MEMFD, BENCH_GPA, len, hva,
				   fd, 0);
	virt_map(vm, BENCH_GPA, BENCH_GPA, len / PAGE_SIZE);
	vcpu_args_set(vcpu, 2, BENCH_GPA, len);
	if (!in_place)
		vm_mem_set_private(vm, BENCH_GPA, len);
	run_touch(vcpu);
	while (elapsed < 1000) {
		t = now_ms();
		for (int i = 0; i < 16; i++, n++) {
			if (in_place) {
				convert(fd, len, 0);
			} else {
				vm_mem_set_shared(vm, BENCH_GPA, len);
				TEST_ASSERT(!fallocate(fd, punch, 0, len), "punch: %d", errno);
			}
			run_touch(vcpu);
			if (in_place) {
				convert(fd, len, private);
			} else {
				vm_mem_set_private(vm, BENCH_GPA, len);
				TEST_ASSERT(!madvise(hva, len, MADV_DONTNEED), "madvise: errno %d",
					    errno);
			}
			run_touch(vcpu);
		}
		elapsed += now_ms() - t;
	}
	kvm_vm_free(vm);
	if (alloc)
		munmap(alloc, len + (2ul << 20));
	else
		munmap(hva, len);
	close(fd);
	snprintf(name, sizeof(name), "roundtrip-%s-%s", in_place ? "inplace" : "punch",
		 huge ? "2m" : "4k");
	snprintf(extra, sizeof(extra), " rate=%.1f roundtrips=%lu", n * 1000 / elapsed, n);
	printf("BENCH backend=%s workload=%s mib=%lu leaked_kb=%ld%s\n", label, name,
	       len >> 20, used_kb() - before, extra);
	fflush(stdout);
}

/* The guest's first touch of -s MiB of shared memory, from a file of @flags. */
static void bench_shared_one(const char *name, uint64_t flags)
{
	struct kvm_vcpu *vcpu;
	long before = used_kb();
	struct kvm_vm *vm = __vm_create_with_vcpus(VM_SHAPE_DEFAULT, 1, size / PAGE_SIZE,
						   guest_touch, &vcpu);
	int fd = vm_create_guest_memfd(vm, size, flags);
	char *hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t m2, m4;
	char extra[64];
	double t;

	TEST_ASSERT(hva != MAP_FAILED, "mmap: errno %d", errno);
	vm_set_user_memory_region2(vm, BENCH_SLOT, KVM_MEM_GUEST_MEMFD, BENCH_GPA, size, hva,
				   fd, 0);
	virt_map(vm, BENCH_GPA, BENCH_GPA, size / PAGE_SIZE);
	vcpu_args_set(vcpu, 2, BENCH_GPA, size);
	m2 = vm_get_stat(vm, "pages_2m");
	m4 = vm_get_stat(vm, "pages_4k");
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;
	snprintf(extra, sizeof(extra), " pages_2m=%lu pages_4k=%lu",
		 vm_get_stat(vm, "pages_2m") - m2, vm_get_stat(vm, "pages_4k") - m4);
	kvm_vm_free(vm);
	munmap(hva, size);
	close(fd);
	report_with(name, size, t, before, extra);
}

static void bench_shared(void)
{
	const uint64_t mapped = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	const uint64_t huge = GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD;

	bench_shared_one("shared-fault-in", mapped);
	if (kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & huge)
		bench_shared_one("huge-shared-fault-in", mapped | huge);
}

/* The flow the boot's kvm.gmem_in_place_conversion chooses. */
static void bench_roundtrip(void)
{
	uint64_t valid = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	bool in_place = gmem_in_place();

	if (in_place && access("/sys/module/gmem_rs", F_OK)) {
		printf("# roundtrip: the built-in backend does not convert in place\n");
		return;
	}
	bench_roundtrip_one(PAGE_SIZE, in_place);
	if (valid & GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD)
		bench_roundtrip_one(2ul << 20, in_place);
}

static void bench_floor(void)
{
	long before = used_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t;

	vm = touch_vm(&vcpu, false, -1);
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;
	kvm_vm_free(vm);
	report("floor", size, t, before);
}

int main(int argc, char *argv[])
{
	int opt;

	while ((opt = getopt(argc, argv, "b:a:s:w:")) != -1) {
		switch (opt) {
		case 'b':
			label = optarg;
			break;
		case 'w':
			only = optarg;
			break;
		case 'a':
			alloc_size = strtoull(optarg, NULL, 0) << 20;
			break;
		case 's':
			size = strtoull(optarg, NULL, 0) << 20;
			break;
		default:
			fprintf(stderr,
				"usage: %s -b LABEL [-a MiB] [-s MiB]\n"
				"       [-w allocate|fault|memfd|scaling|mmap|huge|secret|\n"
				"           roundtrip|shared]\n",
				argv[0]);
			return 1;
		}
	}
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_ASSERT(alloc_size && size, "sizes must not be 0");

	if (only && !strcmp(only, "allocate")) {
		bench_allocate(NULL);
		return 0;
	}
	if (only && !strcmp(only, "fault")) {
		bench_fault_punch(false);
		return 0;
	}
	if (only && !strcmp(only, "mmap")) {
		bench_host_write();
		return 0;
	}
	if (only && !strcmp(only, "huge")) {
		bench_huge();
		return 0;
	}
	if (only && !strcmp(only, "secret")) {
		bench_secret();
		return 0;
	}
	if (only && !strcmp(only, "shared")) {
		bench_shared();
		return 0;
	}
	if (only && !strcmp(only, "roundtrip")) {
		bench_roundtrip();
		return 0;
	}
	if (only && !strcmp(only, "scaling")) {
		bench_scaling();
		return 0;
	}
	if (!only) {
		long ncpus = sysconf(_SC_NPROCESSORS_ONLN);

		bench_allocate(NULL);
		bench_floor_allocate();
		bench_fault_punch(false);
		bench_fault_vcpus(2);
		if (ncpus > 2)
			bench_fault_vcpus(ncpus);
		bench_convert();
		bench_floor();
		bench_host_write();
	}
	bench_allocate("mfd");
	bench_allocate("shmem");
	bench_fault_punch(true);
	bench_shmem_punch();
	return 0;
}
