// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_populate_test: kvm_gmem_populate(), the path SEV-SNP and TDX load a
 * guest's initial private memory through, on a SW_PROTECTED VM, by way of
 * the kvm_gmem_populate_test module.
 *
 * Populated pages hold the source's bytes in the guest; each page is
 * populated once: one already populated or faulted in by the guest is
 * EEXIST, and a call stops at the first such page with the count done. A
 * shared gfn is EINVAL, a poisoned page EHWPOISON, a gfn outside any
 * guest_memfd slot EINVAL; a signal stops the call with the count done so
 * far. A punched page can be populated again. MFD_INACCESSIBLE slots do not
 * populate (EOPNOTSUPP). Memory goes back to its baseline after close. The
 * callback runs with the page's folio unlocked, as in 6.12: a fault on the
 * page does not wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define CORRUPT_PFN		"/sys/kernel/debug/hwpoison/corrupt-pfn"

#define TEST_GPA	0xc0000000ul
#define TEST_GFN	(TEST_GPA >> PAGE_SHIFT)
#define TEST_SLOT	10
#define NPAGES		16
#define QWORDS		(PAGE_SIZE / 8)
#define SLACK_KB	((long)(2 * PAGE_SIZE / 1024))

/* Page i of a source made with @seed holds (seed | i << 16) ^ qword index. */
#define WORD(seed, i, q)	(((seed) | (uint64_t)(i) << 16) ^ (q))

/* What the guest must read: expect[i] is page i's seed, 0 for zeros. */
static uint64_t expect[NPAGES];
static uint64_t check_lo, check_hi;

static void guest_code(void)
{
	for (;;) {
		for (uint64_t i = check_lo; i < check_hi; i++) {
			uint64_t *p = (uint64_t *)(TEST_GPA + i * PAGE_SIZE);

			for (uint64_t q = 0; q < QWORDS; q++) {
				uint64_t want = expect[i] ? WORD(expect[i], i, q) : 0;

				__GUEST_ASSERT(READ_ONCE(p[q]) == want,
					       "page %lu qword %lu: 0x%lx, seed 0x%lx", i, q,
					       READ_ONCE(p[q]), expect[i]);
			}
		}
		GUEST_SYNC(1);
	}
}

static int populate_fd;
static long baseline_kb;
static uint64_t src[NPAGES * QWORDS] __aligned(4096);

/* kvm_gmem_populate() of @n pages from page @first: its result, or -errno. */
static long populate(struct kvm_vm *vm, uint64_t first, int64_t n, uint64_t seed,
		     uint32_t delay_ms, uint64_t *last_pfn)
{
	struct gmem_populate_test_args args = {
		.vm_fd = vm->fd,
		.delay_ms = delay_ms,
		.gfn = TEST_GFN + first,
		.src = seed ? (uint64_t)src : 0,
		.npages = n,
	};
	long r;

	for (uint64_t i = 0; i < NPAGES; i++)
		for (uint64_t q = 0; q < QWORDS; q++)
			src[i * QWORDS + q] = WORD(seed, first + i, q);
	r = ioctl(populate_fd, GMEM_POPULATE_TEST, &args);
	if (last_pfn)
		*last_pfn = args.last_pfn;
	return r < 0 ? -errno : r;
}

/* populate() of @n pages from @first must return @want. */
static void assert_populate(const char *what, long want, struct kvm_vm *vm, uint64_t first,
			    int64_t n, uint64_t seed)
{
	long r = populate(vm, first, n, seed, 0, NULL);

	TEST_ASSERT(r == want, "%s: populate(%lu, %ld): %ld (%s), wanted %ld", what, first, n,
		    r, r < 0 ? strerror(-r) : "count", want);
}

/* The guest reads pages [lo, hi) and finds expect[] there. */
static void guest_reads(struct kvm_vm *vm, struct kvm_vcpu *vcpu, uint64_t lo, uint64_t hi)
{
	check_lo = lo;
	check_hi = hi;
	sync_global_to_guest(vm, check_lo);
	sync_global_to_guest(vm, check_hi);
	sync_global_to_guest(vm, expect);
	gmem_run_to_sync(vcpu, 1);
}

static void punch(int fd, uint64_t first, uint64_t n)
{
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       first * PAGE_SIZE, n * PAGE_SIZE),
		    "%s(%lu, %lu): errno %d", __func__, first, n, errno);
	for (uint64_t i = first; i < first + n; i++)
		expect[i] = 0;
}

static struct kvm_vm *private_vm(struct kvm_vcpu **vcpu, int fd)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(shape, vcpu, guest_code);

	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, NPAGES,
		   KVM_MEM_GUEST_MEMFD, fd, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, NPAGES);
	vm_mem_set_private(vm, TEST_GPA, NPAGES * PAGE_SIZE);
	memset(expect, 0, sizeof(expect));
	return vm;
}

/* Copy, once per page; EEXIST stops a call at the first page already there. */
static void copy_once(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd;

	vm = private_vm(&vcpu, -1);
	fd = memslot2region(vm, TEST_SLOT)->region.guest_memfd;

	assert_populate("first 8 pages", 8, vm, 0, 8, 0xa1000000000000ul);
	for (int i = 0; i < 8; i++)
		expect[i] = 0xa1000000000000ul;
	/* The populated pages hold the source; the others fault in zeroed. */
	guest_reads(vm, vcpu, 0, NPAGES);

	assert_populate("a populated page", -EEXIST, vm, 0, 1, 0xa2000000000000ul);
	assert_populate("a page the guest faulted in", -EEXIST, vm, 12, 1, 0xa2000000000000ul);
	/* A punched page is new again; a call stops at the slot's end. */
	punch(fd, 12, 4);
	assert_populate("past the end of the slot", 4, vm, 12, 8, 0xa3000000000000ul);
	for (int i = 12; i < 16; i++)
		expect[i] = 0xa3000000000000ul;
	/* 8 and 9 are new; 10 was faulted in: the count so far. */
	punch(fd, 8, 2);
	assert_populate("a range up to a faulted-in page", 2, vm, 8, 4, 0xa4000000000000ul);
	expect[8] = 0xa4000000000000ul;
	expect[9] = 0xa4000000000000ul;
	/* Without a source, the callback zeroes the page. */
	punch(fd, 5, 1);
	assert_populate("no source", 1, vm, 5, 1, 0);
	guest_reads(vm, vcpu, 0, NPAGES);

	/* The baseline check at the end can see these pages. */
	TEST_ASSERT(gmem_unevictable_kb() >= baseline_kb + NPAGES * (long)PAGE_SIZE / 1024,
		    "Unevictable does not count the file's %d pages", NPAGES);

	assert_populate("negative count", -EINVAL, vm, 0, -1, 0);
	assert_populate("no count", 0, vm, 2, 0, 0);
	assert_populate("a gfn outside any slot", -EINVAL, vm, NPAGES + 256, 1, 0);
	guest_reads(vm, vcpu, 0, NPAGES);
	kvm_vm_free(vm);
	printf("gmem_populate: copies each page once; EEXIST, counts, EINVAL as contracted\n");
}

/* A shared gfn is EINVAL, and leaves the page to populate once private. */
static void shared_gfn(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	vm = private_vm(&vcpu, -1);
	vm_mem_set_shared(vm, TEST_GPA + 3 * PAGE_SIZE, PAGE_SIZE);
	assert_populate("a shared gfn", -EINVAL, vm, 3, 1, 0xb1000000000000ul);
	assert_populate("a range up to a shared gfn", 3, vm, 0, 4, 0xb1000000000000ul);
	vm_mem_set_private(vm, TEST_GPA + 3 * PAGE_SIZE, PAGE_SIZE);
	assert_populate("the gfn, private again", 1, vm, 3, 1, 0xb1000000000000ul);
	for (int i = 0; i < 4; i++)
		expect[i] = 0xb1000000000000ul;
	guest_reads(vm, vcpu, 0, NPAGES);
	kvm_vm_free(vm);
	printf("gmem_populate: a shared gfn is EINVAL; the page populates once private\n");
}

static void on_alarm(int sig)
{
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static uint64_t slow_last_pfn, slow_end_ms;

static void *populate_slowly(void *vm)
{
	long r = populate(vm, 3, 1, 0xc3000000000000ul, 1000, &slow_last_pfn);

	slow_end_ms = now_ms();
	return (void *)r;
}

/*
 * The callback copies from userspace, which may fault or wait (on a
 * userfaultfd): it runs with the folio unlocked, as in 6.12, so a fault on
 * the same page does not wait for it. Here the callback sleeps 1 s, and a
 * fault of the page meanwhile (kvm_gmem_get_pfn(), through the test
 * module's hold) must return at once; the populate call then finds the page
 * prepared by that fault (EEXIST), or, as C does, counts it.
 */
static void fault_during_callback(void)
{
	struct gmem_hold_test_args hold = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t t0, dt;
	pthread_t t;
	void *ret;
	long r;

	vm = private_vm(&vcpu, -1);
	TEST_ASSERT(!pthread_create(&t, NULL, populate_slowly, vm), "pthread_create");
	/* The callback is asleep by then. */
	usleep(300 * 1000);
	hold.vm_fd = vm->fd;
	hold.gfn = TEST_GFN + 3;
	t0 = now_ms();
	TEST_ASSERT(!ioctl(populate_fd, GMEM_HOLD_TEST, &hold), "GMEM_HOLD_TEST: errno %d", errno);
	dt = now_ms() - t0;
	TEST_ASSERT(!ioctl(populate_fd, GMEM_RELEASE_TEST), "GMEM_RELEASE_TEST: errno %d", errno);
	TEST_ASSERT(!pthread_join(t, &ret), "pthread_join");
	r = (long)ret;
	/*
	 * The callback had the page (it sleeps after the copy) when the fault
	 * came, and populate ended after the fault did.
	 */
	TEST_ASSERT(slow_last_pfn == hold.pfn, "the callback's pfn %#lx, the fault's %#lx",
		    slow_last_pfn, (uint64_t)hold.pfn);
	TEST_ASSERT(slow_end_ms > t0 + dt, "populate ended before the fault: no race tested");
	TEST_ASSERT(dt < 600, "a fault waited %lu ms for populate's callback", dt);
	TEST_ASSERT(r == 1 || r == -EEXIST, "populate raced by a fault: %ld", r);
	kvm_vm_free(vm);
	printf("gmem_populate: a fault during the callback returned in %lu ms; populate: %ld\n",
	       dt, r);
}

/* A signal stops the call between two pages, with the count done. */
static void signal_stops(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval t = { .it_value = { .tv_usec = 300 * 1000 } };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	long done, r;

	vm = private_vm(&vcpu, -1);
	TEST_ASSERT(!sigaction(SIGALRM, &sa, NULL), "sigaction: errno %d", errno);
	TEST_ASSERT(!setitimer(ITIMER_REAL, &t, NULL), "setitimer: errno %d", errno);
	/* 100 ms per page: the alarm comes after a few of the 16. */
	done = populate(vm, 0, NPAGES, 0xc1000000000000ul, 100, NULL);
	TEST_ASSERT(done > 0 && done < NPAGES,
		    "populate interrupted after 300 ms: %ld, wanted a count in 1..%d", done,
		    NPAGES - 1);
	for (long i = 0; i < done; i++)
		expect[i] = 0xc1000000000000ul;
	r = populate(vm, done, NPAGES, 0xc2000000000000ul, 0, NULL);
	TEST_ASSERT(r == NPAGES - done, "populate of the rest: %ld, wanted %ld", r, NPAGES - done);
	for (long i = done; i < NPAGES; i++)
		expect[i] = 0xc2000000000000ul;
	guest_reads(vm, vcpu, 0, NPAGES);
	kvm_vm_free(vm);
	printf("gmem_populate: a signal stopped the call after %ld of %d pages; then the rest\n",
	       done, NPAGES);
}

/* A poisoned page is EHWPOISON until it is punched out. */
static void poison_page(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t pfn = 0;
	char buf[32];
	int fd, cfd;
	long r;

	vm = private_vm(&vcpu, -1);
	fd = memslot2region(vm, TEST_SLOT)->region.guest_memfd;
	r = populate(vm, 2, 1, 0xd1000000000000ul, 0, &pfn);
	TEST_ASSERT(r == 1 && pfn, "populate: %ld, pfn 0x%lx", r, pfn);

	/* As gmem_hwpoison_test: EBUSY (MF_DELAYED) still poisons the page. */
	snprintf(buf, sizeof(buf), "0x%lx", pfn);
	cfd = open(CORRUPT_PFN, O_WRONLY);
	TEST_ASSERT(cfd >= 0, "open(%s): errno %d", CORRUPT_PFN, errno);
	r = write(cfd, buf, strlen(buf));
	TEST_ASSERT(r == (long)strlen(buf) || errno == EBUSY,
		    "injecting at pfn %s: %ld, errno %d", buf, r, errno);
	close(cfd);

	assert_populate("a poisoned page", -EHWPOISON, vm, 2, 1, 0xd2000000000000ul);
	assert_populate("a range up to a poisoned page", 2, vm, 0, 4, 0xd2000000000000ul);
	punch(fd, 2, 1);
	assert_populate("the page, punched", 2, vm, 2, 2, 0xd2000000000000ul);
	for (int i = 0; i < 4; i++)
		expect[i] = 0xd2000000000000ul;
	guest_reads(vm, vcpu, 0, NPAGES);
	kvm_vm_free(vm);
	printf("gmem_populate: a poisoned page (pfn 0x%lx): EHWPOISON; after a punch, populated\n",
	       pfn);
}

/* MFD_INACCESSIBLE slots have no populate. */
static void inaccessible_memfd(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd;

	fd = gmem_inaccessible_memfd("gmem_populate_test", NPAGES * PAGE_SIZE);
	vm = private_vm(&vcpu, fd);
	assert_populate("an MFD_INACCESSIBLE slot", -EOPNOTSUPP, vm, 0, 1, 0xe1000000000000ul);
	guest_reads(vm, vcpu, 0, NPAGES);
	kvm_vm_free(vm);
	close(fd);
	printf("gmem_populate: MFD_INACCESSIBLE slots: EOPNOTSUPP, memory untouched\n");
}

int main(int argc, char *argv[])
{
	long after;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	populate_fd = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(populate_fd >= 0, "open(%s): errno %d; is kvm_gmem_populate_test.ko loaded?",
		    GMEM_POPULATE_DEV, errno);
	TEST_ASSERT(!access(CORRUPT_PFN, W_OK), "no hwpoison injector");

	gmem_pin_to_this_cpu();
	baseline_kb = gmem_unevictable_kb();
	copy_once();
	shared_gfn();
	signal_stops();
	fault_during_callback();
	inaccessible_memfd();
	after = gmem_unevictable_kb();
	TEST_ASSERT(after <= baseline_kb + SLACK_KB,
		    "Unevictable %ld kB after close, %ld kB before", after, baseline_kb);
	printf("gmem_populate: memory back to its baseline after close (%ld -> %ld kB)\n",
	       baseline_kb, after);
	/* Last: the poisoned page stays out of use after close. */
	poison_page();
	close(populate_fd);
	return 0;
}
