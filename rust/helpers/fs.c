// SPDX-License-Identifier: GPL-2.0

/*
 * As mainline's rust/helpers/fs.c (which has this helper alone): the page
 * cache's helpers are in filemap.c.
 */

#include <linux/fs.h>

struct file *rust_helper_get_file(struct file *f)
{
	return get_file(f);
}
