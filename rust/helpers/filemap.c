// SPDX-License-Identifier: GPL-2.0

/* Helpers for the inode and page-cache abstractions (kernel::fs, kernel::mm::filemap). */

#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/uaccess.h>

loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

void rust_helper_filemap_invalidate_lock(struct address_space *mapping)
{
	filemap_invalidate_lock(mapping);
}

void rust_helper_filemap_invalidate_unlock(struct address_space *mapping)
{
	filemap_invalidate_unlock(mapping);
}

void rust_helper_filemap_invalidate_lock_shared(struct address_space *mapping)
{
	filemap_invalidate_lock_shared(mapping);
}

void rust_helper_filemap_invalidate_unlock_shared(struct address_space *mapping)
{
	filemap_invalidate_unlock_shared(mapping);
}

void rust_helper_mapping_set_gfp_mask(struct address_space *m, gfp_t mask)
{
	mapping_set_gfp_mask(m, mask);
}

void rust_helper_mapping_set_inaccessible(struct address_space *mapping)
{
	mapping_set_inaccessible(mapping);
}

void rust_helper_mapping_set_no_direct_map(struct address_space *mapping)
{
	mapping_set_no_direct_map(mapping);
}

bool rust_helper_mapping_no_direct_map(const struct address_space *mapping)
{
	return mapping_no_direct_map(mapping);
}

bool rust_helper_mapping_unevictable(struct address_space *mapping)
{
	return mapping_unevictable(mapping);
}

void rust_helper_mapping_set_folio_order_range(struct address_space *mapping,
					       unsigned int min, unsigned int max)
{
	mapping_set_folio_order_range(mapping, min, max);
}

unsigned int rust_helper_mapping_max_folio_order(const struct address_space *mapping)
{
	return mapping_max_folio_order(mapping);
}

void rust_helper_folio_batch_init(struct folio_batch *fbatch)
{
	folio_batch_init(fbatch);
}

void rust_helper_folio_batch_release(struct folio_batch *fbatch)
{
	folio_batch_release(fbatch);
}

int rust_helper_folio_ref_count(const struct folio *folio)
{
	return folio_ref_count(folio);
}

bool rust_helper_folio_mapped(const struct folio *folio)
{
	return folio_mapped(folio);
}

void rust_helper_folio_lock(struct folio *folio)
{
	folio_lock(folio);
}

void rust_helper_mapping_set_invalidate_lock_class(struct address_space *mapping,
						   struct lock_class_key *key, const char *name)
{
	lockdep_set_class_and_name(&mapping->invalidate_lock, key, name);
}

void rust_helper_pagefault_disable(void)
{
	pagefault_disable();
}

void rust_helper_pagefault_enable(void)
{
	pagefault_enable();
}

void rust_helper_folio_unlock(struct folio *folio)
{
	folio_unlock(folio);
}

int rust_helper_folio_mapcount(const struct folio *folio)
{
	return folio_mapcount(folio);
}

/* Whether page @i of @folio is mapped into userspace: 6.12 still counts each page. */
bool rust_helper_folio_page_mapped(struct folio *folio, unsigned long i)
{
	return atomic_read(&folio_page(folio, i)->_mapcount) >= 0 ||
	       (folio_test_large(folio) && folio_entire_mapcount(folio));
}
