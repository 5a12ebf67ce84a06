// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_stress_test: everything that can race with a private fault, at once.
 *
 * vCPUs of a SW_PROTECTED VM loop over a private range, checking and
 * writing tagged values, while host threads:
 *   - punch holes in the range's file and allocate them again,
 *   - convert parts of the range private <-> shared,
 *   - delete the range's memslot and create it again (rate-limited: QEMU
 *     TCG's nested SVM can hand a running L2 vCPU L1's state under heavy
 *     memslot churn),
 *   - create a second file, bind it to a second memslot the vCPUs also
 *     touch, close it while bound, then delete the slot,
 *   - try to unload the module that serves the files (it must refuse).
 * Run once with guest_memfd files (the backend under test) and once with
 * MFD_INACCESSIBLE memfds.
 *
 * Pass: every call returns what the contract says; the guest only ever
 * reads zeros or a value written to that page and slot (a missed zap that
 * leaves a punched page's old value in place is not caught here:
 * memfd_inaccessible_kvm_test and gmem_demo_test check punches one at a
 * time); every vCPU completes a pass over the memory at least every 20 s,
 * and at least two passes in the round (a short round runs on until they
 * have); after close, memory and the module's reference count are back to
 * their baselines. The counts of each operation are printed.
 *
 * A vCPU that stops making progress is signalled out of KVM_RUN and its
 * registers read. QEMU TCG's nested SVM sometimes hands a running L2 vCPU
 * its L1's state under this churn: it spins with a rip in L1's kernel, or
 * exits with SHUTDOWN (after which KVM has reset its registers: that form
 * is told by the exit alone). With either, the round is retried, at most
 * twice, and each retry printed; any other hang fails the test.
 *
 *   gmem_stress_test [-s SECONDS] [-v VCPUS] [-b LABEL [-r RATE]]
 * The defaults come from GMEM_STRESS_SECONDS (5) and GMEM_STRESS_VCPUS (2).
 *
 * -b LABEL: the contended benchmark of make bench. Only the punch and
 * convert threads run next to the vCPUs, which touch the main range alone,
 * for SECONDS per store. The punch and convert threads each offer RATE
 * operations a second (400). The same
 * checks apply, and each store's results are printed as gmem_bench prints
 * its rows:
 *   BENCH backend=LABEL workload=contended-STORE-vN:WHAT mib=0 rate=R leaked_kb=K
 * with WHAT touches (pages the vCPUs checked and wrote), punches or
 * conversions, R per second; touches-cpu, pages touched per second of the
 * vCPU threads' CPU time (what a vCPU does with the CPU it gets, apart from
 * how much of it the host threads leave); and with WHAT punch-us or
 * convert-us, the mean time of one (a punch, with the re-allocation that
 * follows half of them), in ms=, and punch-cpu-us, convert-cpu-us, the
 * mean CPU time of its thread in one (without the time it waited off the
 * CPU). Under QEMU -icount, CPU time counts instructions.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define MAIN_GPA	0xc0000000ul
#define MAIN_SLOT	10
#define MAIN_NPAGES	128
#define SECOND_GPA	0xd0000000ul
#define SECOND_SLOT	11
#define SECOND_NPAGES	16
#define TOTAL_NPAGES	(MAIN_NPAGES + SECOND_NPAGES)
#define MAX_VCPUS	8

#define SLOT_CHURN_MS	50	/* the main memslot: one delete/create per */
#define SECOND_MS	10	/* the second file: bound this long */
#define UNLOAD_MS	100
#define HANG_MS		20000	/* a vCPU with no pass for this long is hung */
#define MIN_PASSES	2	/* a round lasts until each vCPU has made these */
#define ATTEMPTS	3
#define SLACK_KB	((long)(4 * PAGE_SIZE / 1024))

/* Page i, vCPU v: the upper half of every value it writes there. */
#define TAG(i, v)	(0xa5ul << 56 | (uint64_t)(i) << 40 | (uint64_t)(v) << 32)
#define TAG_MASK	(~0ul << 32)

static uint64_t page_gpa(uint64_t i)
{
	return i < MAIN_NPAGES ? MAIN_GPA + i * PAGE_SIZE
			       : SECOND_GPA + (i - MAIN_NPAGES) * PAGE_SIZE;
}

/*
 * Qword v of each page is vCPU v's. A read gives zeros (a new page, a
 * punched one, a shared page the host never wrote, an access with no
 * memslot) or a value that vCPU wrote to that page, never another page's.
 */
static void guest_code(uint64_t id, uint64_t nr_vcpus, uint64_t npages)
{
	for (uint64_t pass = 1;; pass++) {
		for (uint64_t i = 0; i < npages; i++) {
			uint64_t *p = (uint64_t *)page_gpa(i);

			for (uint64_t v = 0; v < nr_vcpus; v++) {
				uint64_t x = READ_ONCE(p[v]);

				__GUEST_ASSERT(!x || (x & TAG_MASK) == TAG(i, v),
					       "page %lu qword %lu: 0x%lx, not 0 or tagged 0x%lx",
					       i, v, x, TAG(i, v));
			}
			WRITE_ONCE(p[id], TAG(i, id) | (uint32_t)pass);
		}
		GUEST_SYNC(pass);
	}
}

enum store { STORE_GMEM, STORE_MEMFD };
static const char *const store_name[] = { "guest_memfd", "MFD_INACCESSIBLE" };
static const char *const store_tag[] = { "gmem", "mfd" };

/* -b: the benchmark's label; NULL in the test. */
static const char *bench_label;
static unsigned long bench_rate = 400;	/* -r: operations a second per host thread */

struct round;

struct vcpu_info {
	struct round *round;
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	pid_t tid;
	uint64_t passes;
	uint64_t fault_exits;	/* KVM_EXIT_MEMORY_FAULT: a conversion or slot change raced */
	uint64_t mmio_exits;	/* a shared access while the slot was gone */
	uint64_t last_pass_ms;
	uint64_t max_gap_ms;
	int want_state;
	int state_ready;
	int shutdown;
	int done;
	uint32_t exit_reason;
	struct kvm_regs regs;
};

/* One round: a VM, its files, and what the threads did. */
struct round {
	enum store store;
	struct kvm_vm *vm;
	int nr_vcpus;
	struct vcpu_info vcpus[MAX_VCPUS];
	int main_fd;
	struct kvm_userspace_memory_region2 main_region;
	void *second_hva;
	const char *module;	/* the module that serves the files, if any */
	int stop;
	uint64_t punches, allocations, conversions, slot_churns, second_binds, unload_refusals;
	uint64_t punch_ns, convert_ns;	/* time spent in them */
	uint64_t punch_cpu_ns, convert_cpu_ns;	/* CPU time of their threads in them */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	usleep(ms * 1000);
}

/* A random range inside the main range: first page and count. */
static void random_range(unsigned int *seed, uint64_t *first, uint64_t *n)
{
	*first = rand_r(seed) % MAIN_NPAGES;
	*n = 1 + rand_r(seed) % 16;
	if (*first + *n > MAIN_NPAGES)
		*n = MAIN_NPAGES - *first;
}

static int new_file(struct round *r, uint64_t npages)
{
	int fd;

	if (r->store == STORE_GMEM) {
		fd = __vm_create_guest_memfd(r->vm, npages * PAGE_SIZE, 0);
		TEST_ASSERT(fd >= 0, "KVM_CREATE_GUEST_MEMFD: errno %d", errno);
		return fd;
	}
	return gmem_inaccessible_memfd("gmem_stress_test", npages * PAGE_SIZE);
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	TEST_ASSERT(!clock_gettime(clock, &ts), "clock_gettime(%d): errno %d", clock, errno);
	return ts.tv_sec * 1000000000ul + ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* The calling thread's CPU time: under -icount, the instructions it ran. */
static uint64_t thread_cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/*
 * After a memory-fault exit the test yields, so that the host threads get
 * the CPU; the benchmark does not (a fault exit yields to a host thread,
 * whose conversions cause more fault exits).
 */
static void test_yield(void)
{
	if (!bench_label)
		sched_yield();
}

/*
 * Between two operations of a host thread: the test yields to the vCPUs.
 * The benchmark offers a fixed load instead, bench_rate operations a
 * second per thread: run free, the rates settled, run by run, in one of two
 * states, host threads fast and vCPUs starved or the other way round (20x
 * apart in each rate), on either backend, so that no two runs compared.
 */
static void host_pace(uint64_t *next_ns)
{
	uint64_t now;

	if (!bench_label) {
		sched_yield();
		return;
	}
	now = now_ns();
	*next_ns += 1000000000ul / bench_rate;
	if (*next_ns > now) {
		struct timespec ts = {
			.tv_sec = *next_ns / 1000000000ul,
			.tv_nsec = *next_ns % 1000000000ul,
		};

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	} else {
		/* Behind: do not make up for it in a burst. */
		*next_ns = now;
	}
}

/* Once: later signals must not change what the main thread reads. */
static void vcpu_record_state(struct vcpu_info *s)
{
	if (__atomic_load_n(&s->state_ready, __ATOMIC_ACQUIRE))
		return;
	vcpu_regs_get(s->vcpu, &s->regs);
	s->exit_reason = s->vcpu->run->exit_reason;
	__atomic_store_n(&s->state_ready, 1, __ATOMIC_RELEASE);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu_info *s = arg;
	struct kvm_run *run = s->vcpu->run;
	struct round *r = s->round;
	struct ucall uc;
	uint64_t now;
	int ret;

	s->tid = syscall(__NR_gettid);
	while (!READ_ONCE(r->stop)) {
		/* Not _vcpu_run(): a signal must get the thread out of KVM_RUN. */
		ret = __vcpu_run(s->vcpu);
		if (ret == -1 && errno == EINTR) {
			if (READ_ONCE(s->want_state))
				vcpu_record_state(s);
			continue;
		}
		if (ret == -1 && errno == EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			s->fault_exits++;
			test_yield();
			continue;
		}
		TEST_ASSERT(!ret, "vCPU %u: KVM_RUN: errno %d (%s), exit reason %u",
			    s->vcpu->id, errno, strerror(errno), run->exit_reason);
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			switch (get_ucall(s->vcpu, &uc)) {
			case UCALL_SYNC:
				now = now_ms();
				if (now - s->last_pass_ms > s->max_gap_ms)
					s->max_gap_ms = now - s->last_pass_ms;
				WRITE_ONCE(s->last_pass_ms, now);
				WRITE_ONCE(s->passes, s->passes + 1);
				break;
			case UCALL_ABORT:
				REPORT_GUEST_ASSERT(uc);
			default:
				TEST_FAIL("vCPU %u: unexpected ucall %lu", s->vcpu->id, uc.cmd);
			}
			break;
		case KVM_EXIT_MMIO:
			TEST_ASSERT(run->mmio.phys_addr >= MAIN_GPA,
				    "vCPU %u: MMIO exit at 0x%llx", s->vcpu->id,
				    run->mmio.phys_addr);
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0, sizeof(run->mmio.data));
			s->mmio_exits++;
			sched_yield();
			break;
		case KVM_EXIT_SHUTDOWN:
			WRITE_ONCE(s->shutdown, 1);
			vcpu_record_state(s);
			goto out;
		default:
			TEST_FAIL("vCPU %u: unexpected exit reason %u (%s)", s->vcpu->id,
				  run->exit_reason, exit_reason_str(run->exit_reason));
		}
	}
	if (READ_ONCE(s->want_state))
		vcpu_record_state(s);
out:
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *punch_thread(void *arg)
{
	struct round *r = arg;
	unsigned int seed = 1;
	uint64_t first, n, t, cpu, next = now_ns();

	while (!READ_ONCE(r->stop)) {
		random_range(&seed, &first, &n);
		cpu = thread_cpu_ns();
		t = now_ns();
		TEST_ASSERT(!fallocate(r->main_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       first * PAGE_SIZE, n * PAGE_SIZE),
			    "punch of pages %lu+%lu: errno %d", first, n, errno);
		r->punches++;
		if (rand_r(&seed) % 2) {
			TEST_ASSERT(!fallocate(r->main_fd, FALLOC_FL_KEEP_SIZE, first * PAGE_SIZE,
					       n * PAGE_SIZE),
				    "fallocate of pages %lu+%lu: errno %d", first, n, errno);
			r->allocations++;
		}
		r->punch_ns += now_ns() - t;
		r->punch_cpu_ns += thread_cpu_ns() - cpu;
		host_pace(&next);
	}
	return NULL;
}

static void *convert_thread(void *arg)
{
	struct round *r = arg;
	unsigned int seed = 2;
	uint64_t first, n, t, cpu, next = now_ns();

	while (!READ_ONCE(r->stop)) {
		struct kvm_memory_attributes attr = {
			.attributes = rand_r(&seed) % 2 ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
		};

		random_range(&seed, &first, &n);
		attr.address = MAIN_GPA + first * PAGE_SIZE;
		attr.size = n * PAGE_SIZE;
		cpu = thread_cpu_ns();
		t = now_ns();
		TEST_ASSERT(!__vm_ioctl(r->vm, KVM_SET_MEMORY_ATTRIBUTES, &attr),
			    "KVM_SET_MEMORY_ATTRIBUTES(0x%llx) of pages %lu+%lu: errno %d",
			    attr.attributes, first, n, errno);
		r->conversions++;
		r->convert_ns += now_ns() - t;
		r->convert_cpu_ns += thread_cpu_ns() - cpu;
		host_pace(&next);
	}
	return NULL;
}

static int set_region(struct kvm_vm *vm, struct kvm_userspace_memory_region2 *region)
{
	return __vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION2, region);
}

/* Delete the main memslot and create it again; it exists when this ends. */
static void *slot_thread(void *arg)
{
	struct round *r = arg;
	struct kvm_userspace_memory_region2 gone = r->main_region;

	gone.memory_size = 0;
	while (!READ_ONCE(r->stop)) {
		sleep_ms(SLOT_CHURN_MS);
		TEST_ASSERT(!set_region(r->vm, &gone), "deleting the main memslot: errno %d",
			    errno);
		sleep_ms(1);
		/* Binding again must find the file's range free. */
		TEST_ASSERT(!set_region(r->vm, &r->main_region),
			    "creating the main memslot again: errno %d (%s)", errno,
			    strerror(errno));
		r->slot_churns++;
	}
	return NULL;
}

/* A second file, bound, closed while bound, then its slot deleted. */
static void *second_thread(void *arg)
{
	struct round *r = arg;
	struct kvm_userspace_memory_region2 region = {
		.slot = SECOND_SLOT,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = SECOND_GPA,
		.memory_size = SECOND_NPAGES * PAGE_SIZE,
		.userspace_addr = (uint64_t)r->second_hva,
	};
	struct kvm_userspace_memory_region2 gone = region;

	gone.memory_size = 0;
	while (!READ_ONCE(r->stop)) {
		region.guest_memfd = new_file(r, SECOND_NPAGES);
		if (r->second_binds % 2)
			TEST_ASSERT(!fallocate(region.guest_memfd, FALLOC_FL_KEEP_SIZE, 0,
					       SECOND_NPAGES * PAGE_SIZE),
				    "fallocate of the second file: errno %d", errno);
		TEST_ASSERT(!set_region(r->vm, &region), "binding the second file: errno %d (%s)",
			    errno, strerror(errno));
		/* The slot holds the file now. */
		TEST_ASSERT(!close(region.guest_memfd), "close: errno %d", errno);
		sleep_ms(SECOND_MS);
		TEST_ASSERT(!set_region(r->vm, &gone), "deleting the second memslot: errno %d",
			    errno);
		r->second_binds++;
		sleep_ms(SECOND_MS);
	}
	return NULL;
}

static void *unload_thread(void *arg)
{
	struct round *r = arg;

	while (!READ_ONCE(r->stop)) {
		sleep_ms(UNLOAD_MS);
		TEST_ASSERT(syscall(__NR_delete_module, r->module, O_NONBLOCK) == -1 &&
			    errno == EWOULDBLOCK,
			    "delete_module(%s) while its files are in use: errno %d, wanted EWOULDBLOCK",
			    r->module, errno);
		r->unload_refusals++;
	}
	return NULL;
}

/* Signal @s until it leaves KVM_RUN with its registers read: 0 if it never does. */
static int vcpu_state(struct vcpu_info *s)
{
	WRITE_ONCE(s->want_state, 1);
	for (int i = 0; i < 100; i++) {
		if (__atomic_load_n(&s->state_ready, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
			return __atomic_load_n(&s->state_ready, __ATOMIC_ACQUIRE);
		pthread_kill(s->thread, SIGUSR1);
		sleep_ms(50);
	}
	return 0;
}

static void print_kernel_stack(pid_t tid)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", tid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "    %s", line);
	fclose(f);
}

/* One of the VM's debugfs counters, summed over its vCPUs; -1 without debugfs. */
static long vm_debugfs_stat(struct round *r, const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/kvm/%d-%d/%s", getpid(), r->vm->fd, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * What the VM's vCPUs do while one is hung: KVM's fault counters (summed
 * over the vCPUs) over one second. A vCPU retrying one fault forever shows
 * pf_taken climbing with nothing fixed.
 */
static void print_fault_stats(struct round *r)
{
	static const char *const names[] = {
		"exits", "pf_taken", "pf_fixed", "pf_spurious", "pf_emulate", "pf_fast",
		"pf_mmio_spte_created",
	};
	long before[ARRAY_SIZE(names)];

	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			sleep_ms(1000);
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			long v = vm_debugfs_stat(r, names[i]);

			if (v < 0) {
				printf("gmem_stress: no KVM debugfs counter %s\n", names[i]);
				return;
			}
			if (!pass)
				before[i] = v;
			else
				printf("gmem_stress:   %s +%ld in 1 s (%ld)\n", names[i],
				       v - before[i], v);
		}
	}
}

/*
 * The benchmark's counts at the stop, all taken while the load still runs:
 * the vCPUs' passes, their threads' CPU time, the VM's faults and exits.
 * False if a vCPU thread is already gone (it left on a SHUTDOWN).
 */
static bool bench_snapshot(struct round *r, uint64_t *passes, uint64_t *cpu_ns, long *pf_fixed,
			   long *exits)
{
	for (int i = 0; i < r->nr_vcpus; i++) {
		struct vcpu_info *s = &r->vcpus[i];
		struct timespec ts;
		clockid_t clock;

		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) ||
		    pthread_getcpuclockid(s->thread, &clock) || clock_gettime(clock, &ts))
			return false;
		*passes += READ_ONCE(s->passes);
		*cpu_ns += ts.tv_sec * 1000000000ul + ts.tv_nsec;
	}
	*pf_fixed = vm_debugfs_stat(r, "pf_fixed");
	*exits = vm_debugfs_stat(r, "exits");
	return true;
}

/* QEMU TCG's nested SVM bug: L1's state in the L2 vCPU. */
static bool emulator_signature(struct vcpu_info *s)
{
	return s->shutdown || gmem_rip_in_l1_kernel(s->regs.rip);
}

/* Stop the threads; returns true if a hung vCPU shows the emulator's signature. */
static bool stop_round(struct round *r, pthread_t *host, int nr_host, struct vcpu_info *hung)
{
	bool emulator = false;

	if (hung) {
		print_fault_stats(r);
		if (!vcpu_state(hung)) {
			print_kernel_stack(hung->tid);
			TEST_FAIL("vCPU %u made no progress and does not leave KVM_RUN on a signal",
				  hung->vcpu->id);
		}
		emulator = emulator_signature(hung);
		printf("gmem_stress: %s: vCPU %u hung: exit %u, rip 0x%llx, rsp 0x%llx: %s\n",
		       store_name[r->store], hung->vcpu->id, hung->exit_reason, hung->regs.rip,
		       hung->regs.rsp,
		       emulator ? "QEMU TCG's nested SVM bug, retrying" : "a bug of ours");
		if (!emulator)
			print_kernel_stack(hung->tid);
		TEST_ASSERT(emulator, "vCPU %u hung with rip 0x%llx: not QEMU's nested SVM bug",
			    hung->vcpu->id, hung->regs.rip);
	}
	WRITE_ONCE(r->stop, 1);
	for (int i = 0; i < nr_host; i++)
		pthread_join(host[i], NULL);
	for (int i = 0; i < r->nr_vcpus; i++) {
		struct vcpu_info *s = &r->vcpus[i];
		int tries;

		for (tries = 0; tries < 200; tries++) {
			if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
				break;
			pthread_kill(s->thread, SIGUSR1);
			sleep_ms(50);
		}
		if (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
			print_kernel_stack(s->tid);
			TEST_FAIL("vCPU %d does not leave KVM_RUN after 10 s of signals", i);
		}
		pthread_join(s->thread, NULL);
	}
	return emulator;
}

/* Unevictable kB with every CPU's LRU batches drained. */
static long unevictable_kb(void)
{
	gmem_drain_all_lru();
	return gmem_unevictable_kb();
}

static void bench_report(enum store store, int nr_vcpus, const char *what, double rate,
			 long leaked_kb)
{
	printf("BENCH backend=%s workload=contended-%s-v%d:%s mib=0 rate=%.1f leaked_kb=%ld\n",
	       bench_label, store_tag[store], nr_vcpus, what, rate, leaked_kb);
}

/* A time per operation, in the ms= field that gmem_bench uses for times. */
static void bench_time(enum store store, int nr_vcpus, const char *what, double us,
		       long leaked_kb)
{
	printf("BENCH backend=%s workload=contended-%s-v%d:%s mib=0 ms=%.4f leaked_kb=%ld\n",
	       bench_label, store_tag[store], nr_vcpus, what, us / 1e3, leaked_kb);
}

/* One round of @seconds; false if the emulator's bug cut it short. */
static bool run_round(enum store store, int nr_vcpus, int seconds)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct vcpu_info *hung = NULL;
	struct round *r = calloc(1, sizeof(*r));
	uint64_t guest_npages = bench_label ? MAIN_NPAGES : TOTAL_NPAGES;
	long base_kb, base_ref, kb, ref;
	uint64_t t0, t_stop, passes = 0, fault_exits = 0, mmio_exits = 0, max_gap = 0;
	uint64_t stop_passes = 0, vcpu_cpu_ns = 0;
	long pf_fixed = -1, exits = -1;
	bool snapshot_ok = false;
	pthread_t host[5];
	int nr_host = 0;
	bool emulator;

	TEST_ASSERT(r, "out of memory");
	r->store = store;
	r->nr_vcpus = nr_vcpus;
	if (store == STORE_MEMFD)
		r->module = "memfd_inaccessible";
	else if (!access("/sys/module/gmem_rs", F_OK))
		r->module = "gmem_rs";
	base_ref = gmem_module_refcnt(r->module);
	base_kb = unevictable_kb();

	r->vm = __vm_create_with_vcpus(shape, nr_vcpus, 0, guest_code, vcpus);
	r->main_fd = new_file(r, MAIN_NPAGES);
	vm_mem_add(r->vm, VM_MEM_SRC_ANONYMOUS, MAIN_GPA, MAIN_SLOT, MAIN_NPAGES,
		   KVM_MEM_GUEST_MEMFD, r->main_fd, 0);
	r->main_region = memslot2region(r->vm, MAIN_SLOT)->region;
	r->second_hva = mmap(NULL, SECOND_NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(r->second_hva != MAP_FAILED, "mmap: errno %d", errno);
	virt_map(r->vm, MAIN_GPA, MAIN_GPA, MAIN_NPAGES);
	virt_map(r->vm, SECOND_GPA, SECOND_GPA, SECOND_NPAGES);
	vm_mem_set_private(r->vm, MAIN_GPA, MAIN_NPAGES * PAGE_SIZE);
	vm_mem_set_private(r->vm, SECOND_GPA, SECOND_NPAGES * PAGE_SIZE);

	t0 = now_ms();
	for (int i = 0; i < nr_vcpus; i++) {
		r->vcpus[i].round = r;
		r->vcpus[i].vcpu = vcpus[i];
		r->vcpus[i].last_pass_ms = t0;
		vcpu_args_set(vcpus[i], 3, i, nr_vcpus, guest_npages);
		TEST_ASSERT(!pthread_create(&r->vcpus[i].thread, NULL, vcpu_thread, &r->vcpus[i]),
			    "pthread_create");
	}
	TEST_ASSERT(!pthread_create(&host[nr_host++], NULL, punch_thread, r) &&
		    !pthread_create(&host[nr_host++], NULL, convert_thread, r),
		    "pthread_create");
	if (!bench_label)
		TEST_ASSERT(!pthread_create(&host[nr_host++], NULL, slot_thread, r) &&
			    !pthread_create(&host[nr_host++], NULL, second_thread, r) &&
			    (!r->module ||
			     !pthread_create(&host[nr_host++], NULL, unload_thread, r)),
			    "pthread_create");

	while (!hung) {
		bool enough = now_ms() - t0 >= seconds * 1000ul;

		sleep_ms(200);
		for (int i = 0; i < nr_vcpus && !hung; i++) {
			struct vcpu_info *s = &r->vcpus[i];
			/* The pass time first: a pass after now_ms() must not wrap the gap. */
			uint64_t last = READ_ONCE(s->last_pass_ms), now = now_ms();
			uint64_t gap = now > last ? now - last : 0;

			if (READ_ONCE(s->shutdown) || gap > HANG_MS)
				hung = s;
			if (READ_ONCE(s->passes) < MIN_PASSES)
				enough = false;
		}
		if (enough)
			break;
	}
	t_stop = now_ms();
	if (bench_label && !hung)
		snapshot_ok = bench_snapshot(r, &stop_passes, &vcpu_cpu_ns, &pf_fixed, &exits);
	emulator = stop_round(r, host, nr_host, hung);

	for (int i = 0; i < nr_vcpus; i++) {
		struct vcpu_info *s = &r->vcpus[i];
		/* The vCPUs run on while the round stops: a pass may come after t_stop. */
		uint64_t last_gap = t_stop > s->last_pass_ms ? t_stop - s->last_pass_ms : 0;

		TEST_ASSERT(emulator || s->passes >= MIN_PASSES, "vCPU %d made %lu passes", i,
			    s->passes);
		TEST_ASSERT(emulator || (s->max_gap_ms <= HANG_MS && last_gap <= HANG_MS),
			    "vCPU %d went %lu ms without a pass (%lu ms at the end), more than %d ms",
			    i, s->max_gap_ms, last_gap, HANG_MS);
		passes += s->passes;
		fault_exits += s->fault_exits;
		mmio_exits += s->mmio_exits;
		if (s->max_gap_ms > max_gap)
			max_gap = s->max_gap_ms;
	}
	if (!emulator)
		TEST_ASSERT(r->punches && r->allocations && r->conversions &&
			    (bench_label || (r->slot_churns && r->second_binds &&
					     (!r->module || r->unload_refusals))),
			    "a host thread did nothing");

	/* The slot's own reference (a dup) keeps the file until the VM goes. */
	close(r->main_fd);
	kvm_vm_free(r->vm);
	munmap(r->second_hva, SECOND_NPAGES * PAGE_SIZE);

	printf("gmem_stress: %s: %d vCPUs, %.1f s%s: %lu guest passes (longest gap %lu ms), ",
	       store_name[store], nr_vcpus, (now_ms() - t0) / 1000.0,
	       emulator ? " (cut short by the emulator)" : "", passes, max_gap);
	printf("%lu punches, %lu allocations, %lu conversions, %lu memslot re-creations, ",
	       r->punches, r->allocations, r->conversions, r->slot_churns);
	printf("%lu second files bound and closed, %lu unloads of %s refused; ",
	       r->second_binds, r->unload_refusals, r->module ?: "(none: built in)");
	printf("%lu memory-fault exits, %lu MMIO exits\n", fault_exits, mmio_exits);
	if (snapshot_ok) {
		/* -1: no KVM debugfs. */
		printf("gmem_stress: %s: at the stop: %lu passes, %ld faults fixed, %ld exits, ",
		       store_name[store], stop_passes, pf_fixed, exits);
		printf("vCPU threads on a CPU %.1f%% of the time\n",
		       vcpu_cpu_ns / 1e4 / (t_stop - t0) / nr_vcpus);
	}

	/* Every file is gone: memory and module references are back. */
	for (int i = 0; i < 20; i++) {
		kb = unevictable_kb();
		ref = gmem_module_refcnt(r->module);
		if (kb <= base_kb + SLACK_KB && ref == base_ref)
			break;
		sleep_ms(100);
	}
	TEST_ASSERT(kb <= base_kb + SLACK_KB, "%s: Unevictable %ld kB after close, %ld kB before",
		    store_name[store], kb, base_kb);
	TEST_ASSERT(ref == base_ref, "%s: %s refcnt %ld after close, %ld before",
		    store_name[store], r->module, ref, base_ref);
	printf("gmem_stress: %s: after close: Unevictable %ld kB (%ld before), %s refcnt %ld\n",
	       store_name[store], kb, base_kb, r->module ?: "no module", ref);
	/* Gone without a hang seen: a SHUTDOWN just before the stop. */
	if (bench_label && !emulator && !snapshot_ok) {
		printf("gmem_stress: %s: a vCPU thread left before the stop, retrying\n",
		       store_name[store]);
		emulator = true;
	}
	if (bench_label && !emulator) {
		double s = (t_stop - t0) / 1000.0;

		bench_report(store, nr_vcpus, "touches", stop_passes * guest_npages / s,
			     kb - base_kb);
		bench_report(store, nr_vcpus, "touches-cpu",
			     stop_passes * guest_npages / (vcpu_cpu_ns / 1e9), kb - base_kb);
		bench_report(store, nr_vcpus, "punches", r->punches / s, kb - base_kb);
		bench_report(store, nr_vcpus, "conversions", r->conversions / s, kb - base_kb);
		bench_time(store, nr_vcpus, "punch-us", r->punch_ns / 1e3 / r->punches,
			   kb - base_kb);
		bench_time(store, nr_vcpus, "convert-us", r->convert_ns / 1e3 / r->conversions,
			   kb - base_kb);
		bench_time(store, nr_vcpus, "punch-cpu-us", r->punch_cpu_ns / 1e3 / r->punches,
			   kb - base_kb);
		bench_time(store, nr_vcpus, "convert-cpu-us",
			   r->convert_cpu_ns / 1e3 / r->conversions, kb - base_kb);
	}
	free(r);
	return !emulator;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

int main(int argc, char *argv[])
{
	int seconds = env_int("GMEM_STRESS_SECONDS", 5);
	int nr_vcpus = env_int("GMEM_STRESS_VCPUS", 2);
	int opt;

	while ((opt = getopt(argc, argv, "s:v:b:r:")) != -1) {
		switch (opt) {
		case 'b':
			bench_label = optarg;
			break;
		case 'r':
			bench_rate = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'v':
			nr_vcpus = atoi(optarg);
			break;
		default:
			TEST_FAIL("usage: %s [-s SECONDS] [-v VCPUS] [-b LABEL [-r RATE]]",
				  argv[0]);
		}
	}
	TEST_ASSERT(bench_rate >= 1 && bench_rate <= 1000000,
		    "-r %lu: want 1..1000000 operations a second", bench_rate);
	TEST_ASSERT(seconds > 0 && nr_vcpus > 0 && nr_vcpus <= MAX_VCPUS,
		    "%d s, %d vCPUs: want > 0 s and 1..%d vCPUs", seconds, nr_vcpus, MAX_VCPUS);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	gmem_catch_kick();

	for (enum store store = STORE_GMEM; store <= STORE_MEMFD; store++) {
		int attempt;

		for (attempt = 1; attempt <= ATTEMPTS; attempt++)
			if (run_round(store, nr_vcpus, seconds))
				break;
		TEST_ASSERT(attempt <= ATTEMPTS, "%s: the emulator hung %d rounds of %d",
			    store_name[store], ATTEMPTS, ATTEMPTS);
		printf("gmem_stress: %s: passed, %d round(s) retried after QEMU's nested SVM bug\n",
		       store_name[store], attempt - 1);
	}
	return 0;
}
