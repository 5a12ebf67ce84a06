// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>
#include <linux/pagemap.h>

gfp_t rust_helper_mapping_gfp_mask(struct address_space *mapping)
{
	return mapping_gfp_mask(mapping);
}

void rust_helper_i_mmap_lock_read(struct address_space *mapping)
{
	i_mmap_lock_read(mapping);
}

void rust_helper_i_mmap_unlock_read(struct address_space *mapping)
{
	i_mmap_unlock_read(mapping);
}

void rust_helper_i_mmap_lock_write(struct address_space *mapping)
{
	i_mmap_lock_write(mapping);
}

void rust_helper_i_mmap_unlock_write(struct address_space *mapping)
{
	i_mmap_unlock_write(mapping);
}
