// SPDX-License-Identifier: GPL-2.0

/*
 * This helper alone, as in mainline (which has it in this file): the page
 * cache's helpers are with the page cache's.
 */

#include <linux/fs.h>

struct file *rust_helper_get_file(struct file *f)
{
	return get_file(f);
}
