// SPDX-License-Identifier: GPL-2.0-only
/*
 * The floor of guest_memfd's fallocate(): the page allocator alone.
 *
 * GMEM_BENCH_FLOOR on /sys/kernel/debug/kvm_gmem_bench_floor allocates
 * npages order-0 pages with guest_memfd's gfp mask, zeroing each if asked,
 * reports the time that took, then frees them (untimed: fallocate's cost
 * does not include the free either).
 */
#include <linux/debugfs.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

/* Mirrored by tools/testing/selftests/kvm/x86_64/gmem_bench.c. */
struct gmem_bench_floor_args {
	__u64 npages;
	__u32 zero;		/* clear each page, as a first fault does */
	__u32 pad;
	__u64 ns;		/* out: time spent allocating (and zeroing) */
};

#define GMEM_BENCH_FLOOR	_IOWR('G', 0x71, struct gmem_bench_floor_args)

static struct dentry *gmem_bench_floor_dentry;

static void gmem_bench_floor_free(struct list_head *pages)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, pages, lru) {
		list_del(&page->lru);
		__free_page(page);
		cond_resched();
	}
}

static long gmem_bench_floor_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct gmem_bench_floor_args args;
	LIST_HEAD(pages);
	long ret = 0;
	u64 i, t0;

	if (cmd != GMEM_BENCH_FLOOR)
		return -ENOTTY;
	if (copy_from_user(&args, (void __user *)arg, sizeof(args)))
		return -EFAULT;
	if (args.pad || args.zero > 1 || args.npages > totalram_pages())
		return -EINVAL;

	t0 = ktime_get_ns();
	for (i = 0; i < args.npages; i++) {
		/* guest_memfd's mapping gfp mask (GFP_HIGHUSER). */
		struct page *page = alloc_page(GFP_HIGHUSER);

		if (!page) {
			ret = -ENOMEM;
			break;
		}
		if (args.zero)
			clear_highpage(page);
		list_add(&page->lru, &pages);
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		/* As fallocate's loop does, per page. */
		cond_resched();
	}
	args.ns = ktime_get_ns() - t0;
	gmem_bench_floor_free(&pages);
	if (!ret && copy_to_user((void __user *)arg, &args, sizeof(args)))
		ret = -EFAULT;
	return ret;
}

static const struct file_operations gmem_bench_floor_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gmem_bench_floor_ioctl,
};

static int __init gmem_bench_floor_init(void)
{
	gmem_bench_floor_dentry = debugfs_create_file("kvm_gmem_bench_floor", 0600, NULL, NULL,
						      &gmem_bench_floor_fops);
	return PTR_ERR_OR_ZERO(gmem_bench_floor_dentry);
}

static void __exit gmem_bench_floor_exit(void)
{
	debugfs_remove(gmem_bench_floor_dentry);
}

module_init(gmem_bench_floor_init);
module_exit(gmem_bench_floor_exit);
MODULE_DESCRIPTION("The page allocator's floor for guest_memfd's fallocate, for benchmarks");
MODULE_LICENSE("GPL");
