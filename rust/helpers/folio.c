// SPDX-License-Identifier: GPL-2.0

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/uio.h>

/*
 * Rust's Folio reads a folio's flags in place, on every guest fault: they must
 * be its first word, one unsigned long (6.18 wraps it in memdesc_flags_t); and
 * it takes a folio's first page as the folio itself.
 */
static_assert(offsetof(struct folio, page) == 0);
static_assert(offsetof(struct folio, flags) == 0);
static_assert(sizeof(((struct folio *)NULL)->flags) == sizeof(unsigned long));

void rust_helper_folio_get(struct folio *folio)
{
	folio_get(folio);
}

void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}

struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

void rust_helper_put_page(struct page *page)
{
	put_page(page);
}

unsigned long rust_helper_folio_pfn(struct folio *folio)
{
	return folio_pfn(folio);
}

unsigned int rust_helper_folio_order(const struct folio *folio)
{
	return folio_order(folio);
}

pgoff_t rust_helper_folio_index(const struct folio *folio)
{
	return folio->index;
}

bool rust_helper_folio_contain_hwpoisoned_page(struct folio *folio)
{
	return folio_contain_hwpoisoned_page(folio);
}

struct page *rust_helper_folio_page(struct folio *folio, unsigned long n)
{
	return folio_page(folio, n);
}

void rust_helper_folio_zero(struct folio *folio)
{
	long i, nr;

	/* A page with a memory error is not touched: a read of it is a machine check. */
	if (!folio_test_large(folio)) {
		/* A first fault's case: no loop. */
		if (!folio_test_hwpoison(folio))
			clear_highpage(&folio->page);
		return;
	}
	nr = folio_nr_pages(folio);
	for (i = 0; i < nr; i++)
		if (!PageHWPoison(folio_page(folio, i)))
			clear_highpage(folio_page(folio, i));
}

void rust_helper_cond_resched(void)
{
	cond_resched();
}

/*
 * Make sure the folio at @index is in the page cache, allocated with @sp's
 * policy, at @order if it can be, if new (filemap_grab_folio_order_sp()),
 * and return the index after it (or -errno). One call, on fallocate's
 * per-page path, for what are six functions in C: grab, mark dirty (see
 * PageCache::grab_folio), next index, unlock, put.
 */
long rust_helper_filemap_grab_folio_next(struct address_space *mapping,
					 pgoff_t index, struct shared_policy *sp,
					 unsigned int order)
{
	/* Order 0, the common case: one call less per page, as in C's fallocate. */
	struct folio *folio = order ? filemap_grab_folio_order_sp(mapping, index, sp, order) :
				      filemap_grab_folio_sp(mapping, index, sp);

	if (IS_ERR(folio))
		return PTR_ERR(folio);
	folio_mark_dirty(folio);
	index = folio_next_index(folio);
	folio_unlock(folio);
	folio_put(folio);
	return index;
}

struct folio *rust_helper_filemap_lock_folio(struct address_space *mapping,
					     pgoff_t index)
{
	return filemap_lock_folio(mapping, index);
}

bool rust_helper_folio_page_hwpoison(struct folio *folio, unsigned long n)
{
	return PageHWPoison(folio_page(folio, n));
}

/*
 * Splits a large folio into order-0 folios; the caller's lock and reference
 * stay on the first. Not hugetlb's, nor any that is not a THP.
 */
int rust_helper_folio_split(struct folio *folio)
{
	if (!folio_test_large(folio))
		return 0;
	if (folio_test_hugetlb(folio) || !folio_test_large_rmappable(folio))
		return -EINVAL;
	return split_folio(folio);
}

/*
 * Zeroes pages [first, first + nr) of the locked @folio, but for those with a
 * memory error; through the direct map, or around it where it is out
 * (mm/direct_map.c: then the error of splitting the direct map).
 */
int rust_helper_folio_zero_pages(struct folio *folio, unsigned long first,
				 unsigned long nr)
{
	unsigned long i;

	if (folio_test_uptodate(folio) && mapping_no_direct_map(folio->mapping))
		return folio_zero_pages_no_direct_map(folio, first, nr);
	for (i = first; i < first + nr; i++) {
		struct page *page = folio_page(folio, i);

		if (!PageHWPoison(page))
			clear_highpage(page);
	}
	return 0;
}

ssize_t rust_helper_folio_copy_from_iter(struct folio *folio, size_t offset, size_t bytes,
					 struct iov_iter *i)
{
	return folio_copy_from_iter(folio, offset, bytes, i);
}
