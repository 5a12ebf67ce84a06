// SPDX-License-Identifier: GPL-2.0-only
/*
 * Calls kvm_gmem_populate() for selftests: SEV-SNP and TDX are its only
 * users, so no VM type a test machine can run reaches it otherwise.
 *
 * GMEM_POPULATE_TEST on /sys/kernel/debug/kvm_gmem_populate_test takes a VM
 * fd and a gfn range and populates it with a callback that copies the
 * caller's pages (or zeroes, without a source), as the confidential VM
 * types' callbacks do, and returns what kvm_gmem_populate() returns.
 *
 * GMEM_HOLD_TEST takes a VM fd and a gfn and holds the page reference that
 * kvm_gmem_get_pfn() gives for it, as a fault does between getting the pfn
 * and mapping it, until GMEM_RELEASE_TEST (or unload): tests make a large
 * folio unsplittable with it. One page at a time.
 *
 * GMEM_PROBE_TEST reads a page through the kernel's direct map, without
 * faulting (copy_from_kernel_nofault()): the page of a file at an offset
 * (its pfn returned; not allocated if absent: -ENOENT), or a pfn, and
 * returns its first word if it reads it, and the size of the direct map's
 * entry for it (x86: 4 KiB once split). Tests of GUEST_MEMFD_FLAG_NO_DIRECT_MAP
 * see pages go and come back, and 2 MiB entries stay whole, with it; tests of
 * write() read a page no mapping has.
 */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/uaccess.h>

/* Mirrored by tools/testing/selftests/kvm/x86_64/gmem_populate_test.c. */
struct gmem_populate_test_args {
	__u32 vm_fd;
	__u32 delay_ms;		/* sleep, interruptibly, after each page: at most 1 s */
	__u64 gfn;
	__u64 src;		/* user address of npages pages, or 0: zero them */
	__s64 npages;
	__u64 last_pfn;		/* out: the pfn of the last page populated */
};

#define GMEM_POPULATE_TEST	_IOWR('G', 0x70, struct gmem_populate_test_args)

struct gmem_hold_test_args {
	__u32 vm_fd;
	__u32 pad;
	__u64 gfn;
	__u64 pfn;		/* out: the pfn held */
};

#define GMEM_HOLD_TEST		_IOWR('G', 0x71, struct gmem_hold_test_args)
#define GMEM_RELEASE_TEST	_IO('G', 0x72)

struct gmem_probe_test_args {
	__u32 fd;		/* a file, or -1: probe pfn */
	__u32 readable;		/* out: 1 if the direct map reads the page */
	__u64 offset;		/* in the file */
	__u64 pfn;		/* in without a file, else out */
	__u64 word;		/* out: its first word, if readable */
	__u32 entry_kb;		/* out: its direct-map entry's size, 0 if unknown */
	__u32 pad;
};

#define GMEM_PROBE_TEST		_IOWR('G', 0x73, struct gmem_probe_test_args)

static DEFINE_MUTEX(gmem_hold_lock);
static kvm_pfn_t gmem_held_pfn = KVM_PFN_ERR_FAULT;

static int gmem_populate_test_copy(struct kvm *kvm, gfn_t gfn, kvm_pfn_t pfn,
				   void __user *src, int order, void *opaque)
{
	struct gmem_populate_test_args *args = opaque;
	unsigned long i;

	for (i = 0; i < (1ul << order); i++) {
		void *dst = kmap_local_pfn(pfn + i);
		unsigned long left = 0;

		if (src)
			left = copy_from_user(dst, src + i * PAGE_SIZE, PAGE_SIZE);
		else
			clear_page(dst);
		kunmap_local(dst);
		if (left)
			return -EFAULT;
		args->last_pfn = pfn + i;
		/* A signal here stops kvm_gmem_populate() before the next folio. */
		if (args->delay_ms)
			msleep_interruptible(args->delay_ms);
	}
	return 0;
}

static void gmem_release_held(void)
{
	mutex_lock(&gmem_hold_lock);
	if (!is_error_pfn(gmem_held_pfn))
		kvm_release_pfn_clean(gmem_held_pfn);
	gmem_held_pfn = KVM_PFN_ERR_FAULT;
	mutex_unlock(&gmem_hold_lock);
}

static long gmem_hold_test(unsigned long arg)
{
	struct gmem_hold_test_args args;
	struct kvm_memory_slot *slot;
	kvm_pfn_t pfn;
	struct kvm *kvm;
	struct fd f;
	int r, idx;

	if (copy_from_user(&args, (void __user *)arg, sizeof(args)))
		return -EFAULT;
	f = fdget(args.vm_fd);
	if (!fd_file(f))
		return -EBADF;
	if (!file_is_kvm(fd_file(f))) {
		r = -EINVAL;
		goto out;
	}
	kvm = fd_file(f)->private_data;
	mutex_lock(&gmem_hold_lock);
	if (!is_error_pfn(gmem_held_pfn)) {
		r = -EBUSY;
		goto unlock;
	}
	idx = srcu_read_lock(&kvm->srcu);
	slot = gfn_to_memslot(kvm, args.gfn);
	r = slot && kvm_slot_can_be_private(slot) ?
	    kvm_gmem_get_pfn(kvm, slot, args.gfn, &pfn, NULL) : -EINVAL;
	srcu_read_unlock(&kvm->srcu, idx);
	if (!r) {
		args.pfn = pfn;
		if (copy_to_user((void __user *)arg, &args, sizeof(args))) {
			kvm_release_pfn_clean(pfn);
			r = -EFAULT;
		} else {
			gmem_held_pfn = pfn;
		}
	}
unlock:
	mutex_unlock(&gmem_hold_lock);
out:
	fdput(f);
	return r;
}

static bool gmem_direct_map_reads(struct page *page, __u64 *word)
{
	return !copy_from_kernel_nofault(word, page_address(page), sizeof(*word));
}

/* The size of the direct-map entry that maps (or unmapped) @page, in KiB. */
static __u32 gmem_direct_map_entry_kb(struct page *page)
{
#ifdef CONFIG_X86
	unsigned int level;

	if (lookup_address((unsigned long)page_address(page), &level))
		return page_level_size(level) >> 10;
#endif
	return 0;
}

static long gmem_probe_test(unsigned long arg)
{
	struct gmem_probe_test_args args;
	struct folio *folio;
	struct page *page;
	struct fd f;

	if (copy_from_user(&args, (void __user *)arg, sizeof(args)))
		return -EFAULT;
	if (args.fd == (__u32)-1) {
		if (!pfn_valid(args.pfn))
			return -EINVAL;
		args.readable = gmem_direct_map_reads(pfn_to_page(args.pfn), &args.word);
		args.entry_kb = gmem_direct_map_entry_kb(pfn_to_page(args.pfn));
	} else {
		f = fdget(args.fd);
		if (!fd_file(f))
			return -EBADF;
		folio = filemap_lock_folio(fd_file(f)->f_mapping, args.offset >> PAGE_SHIFT);
		if (IS_ERR(folio)) {
			fdput(f);
			return -ENOENT;
		}
		page = folio_file_page(folio, args.offset >> PAGE_SHIFT);
		args.pfn = page_to_pfn(page);
		args.readable = gmem_direct_map_reads(page, &args.word);
		args.entry_kb = gmem_direct_map_entry_kb(page);
		folio_unlock(folio);
		folio_put(folio);
		fdput(f);
	}
	return copy_to_user((void __user *)arg, &args, sizeof(args)) ? -EFAULT : 0;
}

static long gmem_populate_test_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct gmem_populate_test_args args;
	struct kvm *kvm;
	struct fd f;
	long r;

	if (cmd == GMEM_HOLD_TEST)
		return gmem_hold_test(arg);
	if (cmd == GMEM_PROBE_TEST)
		return gmem_probe_test(arg);
	if (cmd == GMEM_RELEASE_TEST) {
		gmem_release_held();
		return 0;
	}
	if (cmd != GMEM_POPULATE_TEST)
		return -ENOTTY;
	if (copy_from_user(&args, (void __user *)arg, sizeof(args)))
		return -EFAULT;
	/* The sleeps hold slots_lock. */
	if (args.delay_ms > MSEC_PER_SEC)
		return -EINVAL;
	f = fdget(args.vm_fd);
	if (!fd_file(f))
		return -EBADF;
	if (!file_is_kvm(fd_file(f))) {
		r = -EINVAL;
		goto out;
	}
	kvm = fd_file(f)->private_data;
	/* As KVM's own ioctls: the source is the VM's process's memory. */
	if (kvm->mm != current->mm) {
		r = -EIO;
		goto out;
	}

	args.last_pfn = 0;
	mutex_lock(&kvm->slots_lock);
	r = kvm_gmem_populate(kvm, args.gfn, u64_to_user_ptr(args.src), args.npages,
			      gmem_populate_test_copy, &args);
	mutex_unlock(&kvm->slots_lock);
	if (copy_to_user((void __user *)arg, &args, sizeof(args)))
		r = -EFAULT;
out:
	fdput(f);
	return r;
}

static const struct file_operations gmem_populate_test_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gmem_populate_test_ioctl,
};

static struct dentry *gmem_populate_test_dentry;

static int __init gmem_populate_test_init(void)
{
	gmem_populate_test_dentry = debugfs_create_file("kvm_gmem_populate_test", 0600, NULL,
							NULL, &gmem_populate_test_fops);
	return PTR_ERR_OR_ZERO(gmem_populate_test_dentry);
}

static void __exit gmem_populate_test_exit(void)
{
	debugfs_remove(gmem_populate_test_dentry);
	gmem_release_held();
}

module_init(gmem_populate_test_init);
module_exit(gmem_populate_test_exit);
MODULE_DESCRIPTION("Calls kvm_gmem_populate() for selftests");
MODULE_LICENSE("GPL");
