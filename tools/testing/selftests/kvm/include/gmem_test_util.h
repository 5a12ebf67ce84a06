/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers the gmem-rs KVM selftests share: running a vCPU to a stage,
 * reading how much unevictable memory (guest_memfd and MFD_INACCESSIBLE
 * pages) the system holds, /proc/vmstat, the pfns KVM maps (from its
 * tracepoint), and the kvm_gmem_populate_test module's ioctl.
 */
#ifndef SELFTEST_KVM_GMEM_TEST_UTIL_H
#define SELFTEST_KVM_GMEM_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "test_util.h"
#include "ucall_common.h"

/*
 * For a VM from ____vm_create() whose slot 0 (@bytes) the test added itself,
 * e.g. bound to a guest_memfd: what __vm_create() does after adding slot 0.
 */
static inline void gmem_vm_finish_create(struct kvm_vm *vm, uint64_t bytes)
{
	int i;

	for (i = 0; i < NR_MEM_REGIONS; i++)
		vm->memslots[i] = 0;
	kvm_vm_elf_load(vm, program_invocation_name);
	ucall_init(vm, bytes);
	guest_rng = new_guest_random_state(guest_random_seed);
	sync_global_to_guest(vm, guest_rng);
	kvm_arch_vm_post_create(vm);
}

/* Whether the kernel booted with kvm.gmem_in_place_conversion=1. */
static inline bool gmem_in_place(void)
{
	char c = 'N';
	const char *param = "/sys/module/kvm/parameters/gmem_in_place_conversion";
	int fd = open(param, O_RDONLY);

	TEST_ASSERT(fd >= 0, "%s: errno %d", param, errno);
	TEST_ASSERT(read(fd, &c, 1) == 1, "read %s", param);
	close(fd);
	return c == 'Y';
}

#ifdef KVM_SET_MEMORY_ATTRIBUTES2	/* the uAPI comes later in the series */
/*
 * KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd @fd: 0 or -errno; *@err (if
 * given) gets error_offset.
 */
static inline int gmem_set_attributes(int fd, uint64_t off, uint64_t size, uint64_t attrs,
				      uint64_t *err)
{
	struct kvm_memory_attributes2 a = {
		.offset = off, .size = size, .attributes = attrs, .error_offset = ~0ull,
	};
	int r = ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &a) ? -errno : 0;

	if (err)
		*err = a.error_offset;
	return r;
}
#endif

/* @vcpu's exit, which must be the ucall GUEST_SYNC(@stage). */
static inline void gmem_expect_sync(struct kvm_vcpu *vcpu, uint64_t stage)
{
	struct ucall uc;

	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(uc.cmd == UCALL_SYNC && uc.args[1] == stage,
		    "ucall %lu stage %lu, wanted SYNC stage %lu", uc.cmd, uc.args[1], stage);
}

/* @vcpu's exit, which must be the ucall GUEST_DONE(). */
static inline void gmem_expect_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(uc.cmd == UCALL_DONE, "ucall %lu, wanted DONE", uc.cmd);
}

/* Runs @vcpu until its next ucall, which must be GUEST_SYNC(@stage). */
static inline void gmem_run_to_sync(struct kvm_vcpu *vcpu, uint64_t stage)
{
	vcpu_run(vcpu);
	gmem_expect_sync(vcpu, stage);
}

/* Runs @vcpu until its next ucall, which must be GUEST_DONE(). */
static inline void gmem_run_to_done(struct kvm_vcpu *vcpu)
{
	vcpu_run(vcpu);
	gmem_expect_done(vcpu);
}

/*
 * QEMU TCG's nested SVM bug (FACTS.md) hands a running L2 vCPU its L1's
 * state: a rip in L1's kernel.
 */
static inline bool gmem_rip_in_l1_kernel(uint64_t rip)
{
	return rip >= 0xffff800000000000ul;
}

static inline void gmem_on_kick(int sig)
{
}

/* SIGUSR1, without SA_RESTART, gets a vCPU thread out of KVM_RUN (EINTR). */
static inline void gmem_catch_kick(void)
{
	struct sigaction sa = { .sa_handler = gmem_on_kick };

	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction: errno %d", errno);
}

/*
 * New pages reach the LRU, and so Unevictable, through per-CPU batches: pin
 * the test to one CPU, whose batch munmap() drains.
 */
static inline void gmem_pin_to_this_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t cpus;

	TEST_ASSERT(cpu >= 0, "sched_getcpu: errno %d", errno);
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(cpus), &cpus),
		    "sched_setaffinity: errno %d", errno);
}

/*
 * Drains this CPU's LRU batch into the LRU lists (munmap() does), and folds
 * the per-CPU counters, so that memory counters are up to date.
 */
static inline void gmem_fold_lru_and_counters(void)
{
	void *p = mmap(NULL, getpagesize(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ssize_t r;
	int fd;

	TEST_ASSERT(p != MAP_FAILED, "mmap: errno %d", errno);
	munmap(p, getpagesize());
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd >= 0) {
		/* Failing leaves the counters staler. */
		r = write(fd, "1", 1);
		(void)r;
		close(fd);
	}
}

/* A /proc/meminfo field, e.g. "DirectMap4k:", in kB; -1 if there is none. */
static inline long gmem_meminfo_kb(const char *field)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			kb = atol(line + strlen(field));
	fclose(f);
	return kb;
}

/* @field of /proc/self/smaps for the mapping that starts at @addr, in kB; -1 if none. */
static inline long gmem_smaps_kb(void *addr, const char *field)
{
	char line[256], start[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool in = false;
	long kb = -1;

	TEST_ASSERT(f, "/proc/self/smaps");
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, start, strlen(start));
		else if (in && !strncmp(line, field, strlen(field)))
			sscanf(line + strlen(field), ": %ld", &kb);
	}
	fclose(f);
	return kb;
}

/* /proc/meminfo's Unevictable, in kB, after draining this CPU's LRU batch. */
static inline long gmem_unevictable_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f;

	gmem_fold_lru_and_counters();
	f = fopen("/proc/meminfo", "r");
	TEST_ASSERT(f, "cannot read /proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Unevictable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	TEST_ASSERT(kb >= 0, "no Unevictable in /proc/meminfo");
	return kb;
}

#ifndef MFD_INACCESSIBLE
#define MFD_INACCESSIBLE	0x0020U
#endif

/* An MFD_INACCESSIBLE memfd of @size bytes (its size is set once). */
static inline int gmem_inaccessible_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_INACCESSIBLE);

	TEST_ASSERT(fd >= 0,
		    "memfd_create(MFD_INACCESSIBLE): errno %d (%s); is memfd_inaccessible.ko loaded?",
		    errno, strerror(errno));
	TEST_ASSERT(!ftruncate(fd, size), "ftruncate: errno %d", errno);
	return fd;
}

/* /sys/module/@module/refcnt; 0 for no module (a built-in backend). */
static inline long gmem_module_refcnt(const char *module)
{
	char path[128];
	long n = -1;
	FILE *f;

	if (!module)
		return 0;
	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", module);
	f = fopen(path, "r");
	TEST_ASSERT(f, "cannot read %s", path);
	TEST_ASSERT(fscanf(f, "%ld", &n) == 1, "cannot parse %s", path);
	fclose(f);
	return n;
}

/*
 * Drains every CPU's LRU batches (compaction starts with that), for tests
 * whose pages come from several threads; gmem_unevictable_kb() after it.
 */
static inline void gmem_drain_all_lru(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);

	if (fd < 0)
		return;
	TEST_ASSERT(write(fd, "1", 1) == 1, "compact_memory: errno %d", errno);
	close(fd);
}

/* Writes @val to @path (procfs, sysfs, debugfs, tracefs). */
static inline void gmem_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	TEST_ASSERT(fd >= 0, "open(%s): errno %d", path, errno);
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val),
		    "write(%s, %s): errno %d", path, val, errno);
	close(fd);
}

/* The /proc/vmstat counter @name. */
static inline uint64_t gmem_vmstat(const char *name)
{
	char line[128];
	uint64_t v = 0;
	size_t n = strlen(name);
	FILE *f = fopen("/proc/vmstat", "r");

	TEST_ASSERT(f, "cannot read /proc/vmstat: errno %d", errno);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ')
			v = strtoull(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

#define GMEM_TRACING		"/sys/kernel/tracing"
#define GMEM_SPTE_EVENT		GMEM_TRACING "/events/kvmmmu/kvm_tdp_mmu_spte_changed"

/*
 * The pfn that the last leaf SPTE of @level installed for @gfn points to, in
 * the kvm_tdp_mmu_spte_changed trace; 0 if none.
 */
static inline uint64_t gmem_traced_pfn(uint64_t gfn, int level)
{
	uint64_t g, old, new, pfn = 0;
	char line[512], *p;
	int as_id, l;
	FILE *f = fopen(GMEM_TRACING "/trace", "r");

	TEST_ASSERT(f, "cannot read the trace");
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "kvm_tdp_mmu_spte_changed: ");
		if (!p || sscanf(p,
				 "kvm_tdp_mmu_spte_changed: as id %d gfn %lx level %d old_spte %lx new_spte %lx",
				 &as_id, &g, &l, &old, &new) != 5)
			continue;
		if (g == gfn && l == level && new)
			pfn = (new & GENMASK_ULL(51, 12)) >> 12;
	}
	fclose(f);
	return pfn;
}

/* The ioctl of virt/kvm/gmem_test/kvm_gmem_populate_test.c, and its arguments. */
struct gmem_populate_test_args {
	__u32 vm_fd;
	__u32 delay_ms;
	__u64 gfn;
	__u64 src;
	__s64 npages;
	__u64 last_pfn;
};

#define GMEM_POPULATE_TEST	_IOWR('G', 0x70, struct gmem_populate_test_args)
#define GMEM_POPULATE_DEV	"/sys/kernel/debug/kvm_gmem_populate_test"

/* Holds kvm_gmem_get_pfn()'s page reference on a gfn until GMEM_RELEASE_TEST. */
struct gmem_hold_test_args {
	__u32 vm_fd;
	__u32 pad;
	__u64 gfn;
	__u64 pfn;
};

#define GMEM_HOLD_TEST		_IOWR('G', 0x71, struct gmem_hold_test_args)
#define GMEM_RELEASE_TEST	_IO('G', 0x72)

/* Reads a page through the direct map: a file's at an offset (fd >= 0), or a pfn. */
struct gmem_probe_test_args {
	__u32 fd;
	__u32 readable;
	__u64 offset;
	__u64 pfn;
	__u64 word;	/* out: its first word, if readable */
	__u32 entry_kb;	/* out: the size of its direct-map entry, 0 if unknown */
	__u32 pad;
};

#define GMEM_PROBE_TEST		_IOWR('G', 0x73, struct gmem_probe_test_args)

/*
 * Whether the direct map reads the page of guest_memfd @fd at @off (its pfn
 * in @pfn, its first word in @word if it reads it), through the test module
 * open at @dev: 1, 0, or -errno (-ENOENT: no page there).
 */
static inline int gmem_probe_word(int dev, int fd, uint64_t off, uint64_t *pfn, uint64_t *word)
{
	struct gmem_probe_test_args args = { .fd = fd, .offset = off };

	if (ioctl(dev, GMEM_PROBE_TEST, &args))
		return -errno;
	if (pfn)
		*pfn = args.pfn;
	if (word)
		*word = args.word;
	return args.readable;
}

static inline int gmem_probe(int dev, int fd, uint64_t off, uint64_t *pfn)
{
	return gmem_probe_word(dev, fd, off, pfn, NULL);
}

/* The same for page frame @pfn. */
static inline int gmem_probe_pfn(int dev, uint64_t pfn)
{
	struct gmem_probe_test_args args = { .fd = -1, .pfn = pfn };

	return ioctl(dev, GMEM_PROBE_TEST, &args) ? -errno : (int)args.readable;
}

/* The size in KiB of the direct-map entry that maps (or unmapped) page frame @pfn. */
static inline long gmem_direct_map_entry_kb(int dev, uint64_t pfn)
{
	struct gmem_probe_test_args args = { .fd = -1, .pfn = pfn };

	return ioctl(dev, GMEM_PROBE_TEST, &args) ? -errno : (long)args.entry_kb;
}

#define GMEM_CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"

/*
 * A memory error in page frame @pfn (hwpoison_inject). EBUSY is success: the
 * page is poisoned and its handling delayed (guest_memfd keeps it until freed).
 */
static inline void gmem_corrupt_pfn(uint64_t pfn)
{
	char buf[32];
	int fd = open(GMEM_CORRUPT_PFN, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open(%s): errno %d", GMEM_CORRUPT_PFN, errno);
	snprintf(buf, sizeof(buf), "%#lx", pfn);
	TEST_ASSERT(write(fd, buf, strlen(buf)) == strlen(buf) || errno == EBUSY,
		    "%s: errno %d", GMEM_CORRUPT_PFN, errno);
	close(fd);
}

#endif /* SELFTEST_KVM_GMEM_TEST_UTIL_H */
