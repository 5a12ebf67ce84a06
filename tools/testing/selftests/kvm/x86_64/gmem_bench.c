// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_bench: time guest_memfd workloads against whichever backend
 * creates guest_memfds (KVM's built-in one, or gmem_rs while loaded).
 *
 *   gmem_bench -b LABEL [-s MiB] [-c MiB]
 *
 * Prints one line per workload:
 *   BENCH backend=LABEL workload=NAME mib=N ms=T leaked_kb=K
 * leaked_kb is how much less memory is available after the workload's
 * objects are gone than before it started.
 *
 *   allocate       fallocate() of the whole range of a fresh guest_memfd
 *   fault-in       a vCPU touches every page of a private range, first time
 *   punch          punch holes (2 MiB at a time) over that range while it
 *                  is bound and mapped into the guest (the TDP zap path)
 *   convert-4k     private->shared->private, one 4 KiB page per ioctl,
 *                  over the first -c MiB of a mapped range
 *   convert-large  the whole range private->shared->private, 4 times
 *   floor          the guest touches as much anonymous (shared) memory:
 *                  the same work with no guest_memfd at all
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define BENCH_GPA	0x100000000ul
#define BENCH_SLOT	10
#define CHUNK		(2ul << 20)

static const char *label = "?";
static uint64_t size = 256ul << 20;
static uint64_t convert_size = 16ul << 20;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long avail_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void report(const char *workload, uint64_t bytes, double ms, long before_kb)
{
	printf("BENCH backend=%s workload=%s mib=%lu ms=%.1f leaked_kb=%ld\n",
	       label, workload, bytes >> 20, ms, before_kb - avail_kb());
	fflush(stdout);
}

static void guest_touch(uint64_t gva, uint64_t len)
{
	for (;;) {
		for (uint64_t off = 0; off < len; off += PAGE_SIZE)
			*(volatile uint64_t *)(gva + off) = off;
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

/* A VM whose vCPU touches [BENCH_GPA, +size) each time it runs. */
static struct kvm_vm *touch_vm(struct kvm_vcpu **vcpu, bool private)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = private ? KVM_X86_SW_PROTECTED_VM : VM_TYPE_DEFAULT,
	};
	uint64_t npages = size / PAGE_SIZE;
	struct kvm_vm *vm;

	/* Page tables for the range come out of slot 0. */
	vm = __vm_create_shape_with_one_vcpu(shape, vcpu, npages / 512 + 64, guest_touch);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, BENCH_GPA, BENCH_SLOT,
				    npages, private ? KVM_MEM_GUEST_MEMFD : 0);
	virt_map(vm, BENCH_GPA, BENCH_GPA, npages);
	vcpu_args_set(*vcpu, 2, BENCH_GPA, size);
	if (private)
		vm_mem_set_private(vm, BENCH_GPA, size);
	return vm;
}

static void bench_allocate(void)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	long before = avail_kb();
	double t;
	int fd;

	fd = vm_create_guest_memfd(vm, size, 0);
	t = now_ms();
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size), "fallocate: errno %d", errno);
	t = now_ms() - t;
	close(fd);
	kvm_vm_free(vm);
	report("allocate", size, t, before);
}

static void bench_fault_punch(void)
{
	long before = avail_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t;

	vm = touch_vm(&vcpu, true);
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;

	/* Punch needs every page mapped: it was just faulted in. */
	double p = now_ms();

	for (uint64_t off = 0; off < size; off += CHUNK)
		vm_guest_mem_punch_hole(vm, BENCH_GPA + off, CHUNK);
	p = now_ms() - p;

	kvm_vm_free(vm);
	report("fault-in", size, t, before);
	report("punch", size, p, before);
}

static void bench_convert(void)
{
	long before = avail_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t;

	vm = touch_vm(&vcpu, true);
	run_touch(vcpu);
	t = now_ms();
	for (uint64_t off = 0; off < convert_size; off += PAGE_SIZE)
		vm_mem_set_shared(vm, BENCH_GPA + off, PAGE_SIZE);
	for (uint64_t off = 0; off < convert_size; off += PAGE_SIZE)
		vm_mem_set_private(vm, BENCH_GPA + off, PAGE_SIZE);
	t = now_ms() - t;
	report("convert-4k", convert_size, t, before);

	run_touch(vcpu);
	t = now_ms();
	for (int i = 0; i < 4; i++) {
		vm_mem_set_shared(vm, BENCH_GPA, size);
		vm_mem_set_private(vm, BENCH_GPA, size);
	}
	t = now_ms() - t;
	kvm_vm_free(vm);
	report("convert-large", size, t, before);
}

static void bench_floor(void)
{
	long before = avail_kb();
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	double t;

	vm = touch_vm(&vcpu, false);
	t = now_ms();
	run_touch(vcpu);
	t = now_ms() - t;
	kvm_vm_free(vm);
	report("floor", size, t, before);
}

int main(int argc, char *argv[])
{
	int opt;

	while ((opt = getopt(argc, argv, "b:s:c:")) != -1) {
		switch (opt) {
		case 'b': label = optarg; break;
		case 's': size = strtoull(optarg, NULL, 0) << 20; break;
		case 'c': convert_size = strtoull(optarg, NULL, 0) << 20; break;
		default:
			fprintf(stderr, "usage: %s -b LABEL [-s MiB] [-c MiB]\n", argv[0]);
			return 1;
		}
	}
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_ASSERT(size && !(size % CHUNK) && convert_size <= size, "bad sizes");

	bench_allocate();
	bench_fault_punch();
	bench_convert();
	bench_floor();
	return 0;
}
