// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_linux_boot_test: a Linux guest whose memory is all one guest_memfd,
 * booted the way a secret-free VMM (Firecracker's secret_free mode) boots
 * it, against whichever backend creates guest_memfds.
 *
 * The VMM reads KVM_CAP_GUEST_MEMFD_FLAGS of a default VM and wants
 * MMAP | INIT_SHARED | NO_DIRECT_MAP (0x7) and WRITE; it creates one file
 * for all of the guest's memory, maps it, binds it as the only memslot,
 * and loads the kernel by memcpy() into the mapping and the initramfs by
 * pwrite(), as Linux's 64-bit boot protocol wants them. The guest kernel
 * (configs/guest.config: kvm-clock, an early serial console) runs /init
 * (gmem_linux_boot_init.sh): it writes 32 MiB and reads it back, checks
 * that kvm-clock is its clocksource and that time advances, and reboots
 * through the keyboard controller. The VMM serves the serial port and that
 * reset, checks what the guest reported, and that every page the guest
 * alone used (neither the VMM's loads nor holes) is out of the host's
 * direct map. The guest's console goes to the log as "# " lines.
 *
 * The kernel and initramfs come from gmem_guest/ in the working directory
 * (scripts/build.sh builds them next to this program, and run-tests.sh runs
 * each test from its directory), or from $GMEM_GUEST_DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <asm/bootparam.h>
#include <linux/kvm.h>

#include "gmem_test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define WANTED		(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED | \
			 GUEST_MEMFD_FLAG_NO_DIRECT_MAP | GUEST_MEMFD_FLAG_WRITE)
#define RAM_SIZE	(256ul << 20)
#define GDT_ADDR	0x500ul
#define BOOT_PARAMS	0x7000ul
#define PML4_ADDR	0x9000ul	/* then the PDPT and one PD: 1 GiB identity-mapped */
#define CMDLINE_ADDR	0x20000ul
#define KERNEL_ADDR	0x1000000ul
#define LOW_RAM_END	0x9fc00ul
#define E820_RAM	1
#define COM1		0x3f8
#define KBD_STATUS	0x64
#define KBD_RESET	0xfe
#define TIMEOUT_S	300
#define CONSOLE_MAX	(1024 * 1024)

static const char cmdline[] =
	"earlyprintk=serial,ttyS0,115200 keep_bootcon reboot=k panic=-1 rdinit=/init";

static char console[CONSOLE_MAX];
static size_t console_len;
static uint8_t com1_lcr;
static sig_atomic_t timed_out;
static struct kvm_run *vcpu_run_page;
/* What the VMM wrote: the guest-only pages are the others. */
static uint64_t initrd_start, initrd_end, kernel_end;

/* Out of KVM_RUN now, or at its next entry if the VMM is serving an exit. */
static void on_alarm(int sig)
{
	WRITE_ONCE(timed_out, 1);
	WRITE_ONCE(vcpu_run_page->immediate_exit, 1);
}

/* The whole file, its size in @size, padded with zeros to whole pages. */
static char *read_whole(const char *dir, const char *name, size_t *size)
{
	char path[4096];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0, "open(%s): errno %d (scripts/build.sh selftests builds it)", path,
		    errno);
	TEST_ASSERT(!fstat(fd, &st), "fstat(%s): errno %d", path, errno);
	*size = st.st_size;
	buf = calloc(1, align_up(*size, PAGE_SIZE));
	TEST_ASSERT(buf, "calloc");
	TEST_ASSERT(read(fd, buf, *size) == (ssize_t)*size, "read(%s): errno %d", path, errno);
	close(fd);
	return buf;
}

/*
 * Loads the bzImage into the mapping and the initramfs into the file with
 * pwrite(), and writes the zero page and the command line: the entry point.
 */
static uint64_t load_linux(char *mem, int fd, const char *dir)
{
	struct boot_params *bp = (struct boot_params *)(mem + BOOT_PARAMS);
	size_t ksize, isize, setup, hdr_len;
	char *img = read_whole(dir, "bzImage", &ksize);
	char *initrd = read_whole(dir, "initramfs.cpio", &isize);
	uint64_t len;

	TEST_ASSERT(ksize > 0x264 && !memcmp(img + 0x202, "HdrS", 4), "bzImage: no setup header");
	setup = ((img[0x1f1] ? (uint8_t)img[0x1f1] : 4) + 1) * 512;
	TEST_ASSERT(ksize > setup && isize < RAM_SIZE / 2,
		    "bzImage of %zu bytes (setup %zu), initramfs of %zu", ksize, setup, isize);
	hdr_len = 0x202 + (uint8_t)img[0x201] - 0x1f1;
	memset(bp, 0, sizeof(*bp));
	memcpy(&bp->hdr, img + 0x1f1, hdr_len < sizeof(bp->hdr) ? hdr_len : sizeof(bp->hdr));
	TEST_ASSERT(bp->hdr.version >= 0x20c && (bp->hdr.xloadflags & XLF_KERNEL_64),
		    "bzImage: boot protocol %#x, xloadflags %#x: no 64-bit entry",
		    bp->hdr.version, bp->hdr.xloadflags);
	TEST_ASSERT(bp->hdr.relocatable_kernel || bp->hdr.pref_address == KERNEL_ADDR,
		    "bzImage: not relocatable, and linked for %#llx", bp->hdr.pref_address);

	initrd_start = align_down(RAM_SIZE - isize, 1ul << 20);
	TEST_ASSERT(KERNEL_ADDR + ksize - setup <= initrd_start &&
		    KERNEL_ADDR + bp->hdr.init_size <= initrd_start,
		    "kernel (%zu bytes, %u to run) and initramfs (%zu) do not fit in %lu MiB",
		    ksize - setup, bp->hdr.init_size, isize, RAM_SIZE >> 20);
	memcpy(mem + KERNEL_ADDR, img + setup, ksize - setup);
	kernel_end = KERNEL_ADDR + bp->hdr.init_size;
	/* A restored snapshot's way in: write() of the file, not its mapping. */
	len = align_up(isize, PAGE_SIZE);
	initrd_end = initrd_start + len;
	TEST_ASSERT(pwrite(fd, initrd, len, initrd_start) == (ssize_t)len,
		    "pwrite of the initramfs: errno %d", errno);

	memcpy(mem + CMDLINE_ADDR, cmdline, sizeof(cmdline));
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.code32_start = KERNEL_ADDR;
	bp->hdr.cmd_line_ptr = CMDLINE_ADDR;
	bp->hdr.ramdisk_image = initrd_start;
	bp->hdr.ramdisk_size = isize;
	bp->e820_table[0] = (struct boot_e820_entry){ 0, LOW_RAM_END, E820_RAM };
	bp->e820_table[1] = (struct boot_e820_entry){ 1ul << 20, RAM_SIZE - (1ul << 20),
						      E820_RAM };
	bp->e820_entries = 2;
	free(img);
	free(initrd);
	/* The 64-bit entry is 0x200 into the protected-mode kernel. */
	return KERNEL_ADDR + 0x200;
}

/* Long mode, paging on an identity map of the first GiB, flat segments. */
static void setup_long_mode(int vcpu_fd, char *mem, uint64_t entry)
{
	uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR), *pml4 = (uint64_t *)(mem + PML4_ADDR);
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x10,
				    .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = 0x18,
				    .type = 0x3, .present = 1, .s = 1, .db = 1, .g = 1 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = entry, .rsi = BOOT_PARAMS, .rflags = 0x2 };
	int i;

	/* The boot protocol's __BOOT_CS (0x10) and __BOOT_DS (0x18). */
	gdt[2] = 0x00af9b000000ffffull;
	gdt[3] = 0x00cf93000000ffffull;
	pml4[0] = (PML4_ADDR + PAGE_SIZE) | 0x3;
	pdpt[0] = (PML4_ADDR + 2 * PAGE_SIZE) | 0x3;
	for (i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;

	TEST_ASSERT(!ioctl(vcpu_fd, KVM_GET_SREGS, &sregs), "KVM_GET_SREGS: errno %d", errno);
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cs = code;
	sregs.ds = data;
	sregs.es = data;
	sregs.fs = data;
	sregs.gs = data;
	sregs.ss = data;
	sregs.cr3 = PML4_ADDR;
	sregs.cr4 = X86_CR4_PAE;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA;
	TEST_ASSERT(!ioctl(vcpu_fd, KVM_SET_SREGS, &sregs), "KVM_SET_SREGS: errno %d", errno);
	TEST_ASSERT(!ioctl(vcpu_fd, KVM_SET_REGS, &regs), "KVM_SET_REGS: errno %d", errno);
}

static void console_put(char c)
{
	static bool line_start = true;

	if (console_len < CONSOLE_MAX - 1)
		console[console_len++] = c;
	if (line_start)
		fputs("# ", stdout);
	putchar(c);
	line_start = c == '\n';
	if (line_start)
		fflush(stdout);
}

/*
 * COM1 as the early console drives it (transmit always ready, no
 * interrupts), the keyboard controller's status and reset; other ports
 * read as absent. True once the guest resets.
 */
static bool serve_io(struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint16_t port = run->io.port;
	uint32_t i;

	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (port == COM1 && !(com1_lcr & 0x80))
				console_put(data[0]);
			else if (port == COM1 + 3)
				com1_lcr = data[0];
			else if (port == KBD_STATUS && data[0] == KBD_RESET)
				return true;
			continue;
		}
		memset(data, 0, run->io.size);
		if (port == COM1 + 5)
			data[0] = 0x60;		/* LSR: transmitter empty */
		else if (port == COM1 + 2)
			data[0] = 0x01;		/* IIR: no interrupt pending */
		else if (port == COM1 + 3)
			data[0] = com1_lcr;
		else if (port < COM1 || port > COM1 + 7) {
			if (port != KBD_STATUS && port != 0x60)
				memset(data, 0xff, run->io.size);
		}
	}
	return false;
}

/* Runs the guest until it resets, or shuts down; false on a timeout. */
static bool run_guest(int vcpu_fd, struct kvm_run *run, uint32_t *exit_reason)
{
	struct kvm_regs regs;

	for (;;) {
		if (READ_ONCE(timed_out)) {
			TEST_ASSERT(!ioctl(vcpu_fd, KVM_GET_REGS, &regs), "KVM_GET_REGS");
			printf("\n# timed out after %d s, rip %#llx\n", TIMEOUT_S, regs.rip);
			return false;
		}
		if (ioctl(vcpu_fd, KVM_RUN, NULL) < 0) {
			TEST_ASSERT(errno == EINTR, "KVM_RUN: errno %d", errno);
			continue;
		}
		*exit_reason = run->exit_reason;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (serve_io(run))
				return true;
			break;
		case KVM_EXIT_MMIO:
			/* No device: reads see all ones, writes go nowhere. */
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, run->mmio.len);
			break;
		case KVM_EXIT_SHUTDOWN:
			return true;
		default:
			TEST_ASSERT(!ioctl(vcpu_fd, KVM_GET_REGS, &regs), "KVM_GET_REGS");
			TEST_FAIL("exit reason %u (%s) at rip %#llx", run->exit_reason,
				  exit_reason_str(run->exit_reason), regs.rip);
		}
	}
}

static bool console_has(const char *s)
{
	console[console_len] = '\0';
	return strstr(console, s);
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = on_alarm };
	const char *dir = getenv("GMEM_GUEST_DIR") ?: "gmem_guest";
	const struct kvm_cpuid2 *supported;
	struct kvm_cpuid2 *cpuid;
	struct kvm_vm *vm;
	struct kvm_run *run;
	uint64_t valid, entry;
	uint32_t exit_reason = 0;
	struct timespec t0, t1;
	uint64_t off, guest_pages = 0, readable = 0;
	int fd, kvm_fd, vcpu_fd, run_size, probe_dev, r, i;
	bool reset;
	char *mem;

	ksft_print_header();
	ksft_set_plan(3);

	vm = vm_create_barebones();
	valid = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	if ((valid & WANTED) == WANTED)
		ksft_test_result_pass("a default VM lists %#lx (wanted %#llx)\n", valid, WANTED);
	else
		ksft_exit_fail_msg("guest_memfd flags requested %#llx, supported %#lx\n", WANTED,
				   valid);

	fd = vm_create_guest_memfd(vm, RAM_SIZE, WANTED);
	mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap: errno %d", errno);
	vm_set_user_memory_region2(vm, 0, KVM_MEM_GUEST_MEMFD, 0, RAM_SIZE, mem, fd, 0);
	vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)0xfffbd000ul);
	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL);
	vm_ioctl(vm, KVM_CREATE_PIT2, &(struct kvm_pit_config){ .flags = 0 });

	vcpu_fd = __vm_ioctl(vm, KVM_CREATE_VCPU, (void *)0ul);
	TEST_ASSERT(vcpu_fd >= 0, "KVM_CREATE_VCPU: errno %d", errno);
	kvm_fd = open_kvm_dev_path_or_exit();
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	TEST_ASSERT(run_size > 0, "KVM_GET_VCPU_MMAP_SIZE: errno %d", errno);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	TEST_ASSERT(run != MAP_FAILED, "mmap of kvm_run: errno %d", errno);
	vcpu_run_page = run;
	supported = kvm_get_supported_cpuid();
	cpuid = malloc(kvm_cpuid2_size(supported->nent));
	TEST_ASSERT(cpuid, "malloc");
	memcpy(cpuid, supported, kvm_cpuid2_size(supported->nent));
	/*
	 * As every VMM: the hypervisor bit (the guest looks for KVM's leaves,
	 * kvm-clock's, only then), and vCPU 0's APIC ID in place of the host CPU's.
	 */
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ecx |= 1u << 31;
			e->ebx &= 0x00ffffff;
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = 0;
		}
	}
	TEST_ASSERT(!ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid), "KVM_SET_CPUID2: errno %d", errno);

	entry = load_linux(mem, fd, dir);
	setup_long_mode(vcpu_fd, mem, entry);

	TEST_ASSERT(!sigaction(SIGALRM, &sa, NULL), "sigaction: errno %d", errno);
	alarm(TIMEOUT_S);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	reset = run_guest(vcpu_fd, run, &exit_reason);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);
	fflush(stdout);
	printf("# the guest ran %.1f s and ended with %s\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       !reset ? "a timeout" : exit_reason == KVM_EXIT_IO ? "a reset" : "a shutdown");
	if (reset && exit_reason == KVM_EXIT_IO &&
	    console_has("GMEM_GUEST: clocksource kvm-clock") &&
	    console_has("GMEM_GUEST: memory ok") && console_has("GMEM_GUEST: time advanced") &&
	    console_has("GMEM_GUEST: done") && !console_has("GMEM_GUEST: FAIL"))
		ksft_test_result_pass("Linux booted on kvm-clock, wrote and read back 32 MiB\n");
	else
		ksft_test_result_fail("the guest did not report success (its console is above)\n");

	/*
	 * Every page the guest alone used (not one the VMM loaded, below the
	 * kernel's end or in the initramfs) is out of the host's direct map:
	 * more than half of its two 32 MiB files lie there (less than 16 MiB
	 * of RAM lies below the kernel, 2 MiB in the initramfs).
	 */
	probe_dev = open(GMEM_POPULATE_DEV, O_RDWR);
	TEST_ASSERT(probe_dev >= 0, "open(%s): errno %d", GMEM_POPULATE_DEV, errno);
	for (off = kernel_end; off < RAM_SIZE; off += PAGE_SIZE) {
		if (off >= initrd_start && off < initrd_end)
			continue;
		r = gmem_probe(probe_dev, fd, off, NULL);
		TEST_ASSERT(r >= 0 || r == -ENOENT, "probe of %#lx: %d", off, r);
		guest_pages += r >= 0;
		readable += r == 1;
	}
	close(probe_dev);
	if (guest_pages >= (32ul << 20) / PAGE_SIZE && !readable)
		ksft_test_result_pass("the guest's %lu pages of its own: out of the direct map\n",
				      guest_pages);
	else
		ksft_test_result_fail("%lu pages of the guest's own (want 32 MiB), %lu readable\n",
				      guest_pages, readable);

	munmap(run, run_size);
	close(kvm_fd);
	close(vcpu_fd);
	munmap(mem, RAM_SIZE);
	close(fd);
	kvm_vm_free(vm);
	free(cpuid);
	ksft_finished();
}
