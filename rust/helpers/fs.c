// SPDX-License-Identifier: GPL-2.0

/*
 * get_file() as in mainline (which has it in this file), and the count of an
 * iov_iter, which a write's file operation reads: the page cache's helpers
 * are with the page cache's.
 */

#include <linux/fs.h>
#include <linux/uio.h>

struct file *rust_helper_get_file(struct file *f)
{
	return get_file(f);
}

size_t rust_helper_iov_iter_count(const struct iov_iter *i)
{
	return iov_iter_count(i);
}
