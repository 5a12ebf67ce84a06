// SPDX-License-Identifier: GPL-2.0
/*
 * Folios out of the kernel's direct map, for mappings marked
 * AS_NO_DIRECT_MAP (guest_memfd's GUEST_MEMFD_FLAG_NO_DIRECT_MAP).
 *
 * The rule, for a folio in the page cache of such a mapping: it is out of
 * the direct map exactly while it is uptodate. Its owner zaps it with
 * folio_zap_direct_map() before it marks it uptodate (after zeroing or
 * filling it through the direct map), and the page cache gives it back with
 * folio_restore_direct_map() when it frees it. Nothing of the kernel reaches
 * its contents through the direct map in between; GUP refuses its mappings
 * (mm/gup.c), so nothing pins what the kernel cannot read.
 *
 * The direct map changes at the folio's size: one call for a whole folio,
 * so that zapping an aligned 2 MiB folio keeps a 2 MiB direct-map entry;
 * split_huge_page() splits the entry first when it splits such a folio.
 * x86-64 only (mm/Makefile): it changes a range at once and splits on demand.
 *
 * Hibernation is refused while any such page is out (no_direct_map_active()),
 * as while secretmem is in use: the image would hold what the kernel must
 * not read.
 */

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/set_memory.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <asm/set_memory.h>
#include <asm/tlbflush.h>

/* Pages zapped and not yet given back, a poisoned one included. */
static atomic_long_t no_direct_map_pages;

/* Whether any page is out of the direct map under the rule above. */
bool no_direct_map_active(void)
{
	return atomic_long_read(&no_direct_map_pages) != 0;
}

/**
 * folio_zap_direct_map - take a folio out of the kernel's direct map
 * @folio: the locked folio, not yet uptodate, of an AS_NO_DIRECT_MAP mapping
 *
 * Flushes the TLB of the range: when it returns, no CPU reaches the folio
 * through the direct map.
 *
 * Return: 0, or -ENOMEM if the direct map had to be split and could not
 * be (nothing changed then).
 */
int folio_zap_direct_map(struct folio *folio)
{
	unsigned long addr = (unsigned long)folio_address(folio);
	int ret;

	VM_WARN_ON_FOLIO(!folio_test_locked(folio), folio);
	VM_WARN_ON_FOLIO(folio_test_uptodate(folio), folio);
	ret = set_direct_map_valid_noflush(folio_page(folio, 0), folio_nr_pages(folio), false);
	if (ret)
		return ret;
	flush_tlb_kernel_range(addr, addr + folio_size(folio));
	atomic_long_add(folio_nr_pages(folio), &no_direct_map_pages);
	return 0;
}
EXPORT_SYMBOL_GPL(folio_zap_direct_map);

/**
 * folio_restore_direct_map - give a zapped folio back its direct map, zeroed
 * @folio: an uptodate folio of an AS_NO_DIRECT_MAP mapping that the page
 *         cache is freeing
 *
 * Zeroed as secretmem's: the guest's data does not go back to the
 * allocator. Cannot fail: the entries to restore are those zapped, at the
 * same size, or split before the folio was (folio_split_direct_map()). A
 * page with a memory error stays out of the direct map.
 */
void folio_restore_direct_map(struct folio *folio)
{
	bool poisoned = folio_test_large(folio) ? folio_test_has_hwpoisoned(folio) :
						  folio_test_hwpoison(folio);
	long i, nr = folio_nr_pages(folio);

	WARN_ON_ONCE(atomic_long_sub_return(nr, &no_direct_map_pages) < 0);
	if (!poisoned) {
		WARN_ON_ONCE(set_direct_map_valid_noflush(folio_page(folio, 0), nr, true));
		folio_zero_range(folio, 0, folio_size(folio));
		return;
	}
	for (i = 0; i < nr; i++) {
		struct page *page = folio_page(folio, i);

		if (PageHWPoison(page))
			continue;
		WARN_ON_ONCE(set_direct_map_valid_noflush(page, 1, true));
		clear_page(page_address(page));
	}
}
EXPORT_SYMBOL_GPL(folio_restore_direct_map);

/**
 * folio_split_direct_map - before a zapped large folio is split
 * @folio: the locked, uptodate large folio of an AS_NO_DIRECT_MAP mapping
 *
 * Its direct map in base-page entries, so that each piece of the split
 * folio is restored (or zeroed in place) alone, later, without allocating
 * page tables on a path that cannot fail.
 *
 * Return: 0, or -ENOMEM (nothing changed).
 */
int folio_split_direct_map(struct folio *folio)
{
	return set_memory_4k((unsigned long)folio_address(folio), folio_nr_pages(folio));
}

/**
 * folio_zero_pages_no_direct_map - zero pages of a zapped folio in place
 * @folio: the locked, uptodate folio of an AS_NO_DIRECT_MAP mapping
 * @first: its first page to zero
 * @nr: how many
 *
 * Each page (but a poisoned one) comes back into the direct map, is zeroed
 * and leaves again: the folio stays uptodate, so it stays out. Only the
 * contents being discarded are reachable meanwhile.
 *
 * Return: 0, or the error of folio_split_direct_map() (nothing zeroed).
 */
int folio_zero_pages_no_direct_map(struct folio *folio, unsigned long first, unsigned long nr)
{
	unsigned long i, addr = (unsigned long)folio_address(folio);
	int ret = folio_test_large(folio) ? folio_split_direct_map(folio) : 0;

	if (ret)
		return ret;
	for (i = first; i < first + nr; i++) {
		struct page *page = folio_page(folio, i);

		if (PageHWPoison(page))
			continue;
		/* Base-page entries: neither change allocates. */
		WARN_ON_ONCE(set_direct_map_valid_noflush(page, 1, true));
		clear_page(page_address(page));
		WARN_ON_ONCE(set_direct_map_valid_noflush(page, 1, false));
	}
	flush_tlb_kernel_range(addr + first * PAGE_SIZE, addr + (first + nr) * PAGE_SIZE);
	return 0;
}
EXPORT_SYMBOL_GPL(folio_zero_pages_no_direct_map);

/**
 * folio_copy_from_iter_no_direct_map - write pages of a zapped folio
 * @folio: the locked, uptodate folio of an AS_NO_DIRECT_MAP mapping
 * @offset: where in the folio to start
 * @bytes: how many bytes to copy
 * @i: the source
 *
 * Through a temporary mapping of one page at a time (vmap()), never the
 * direct map, flushed from every TLB before the next page is mapped. Page
 * faults are disabled, as in copy_folio_from_iter_atomic(): a source page
 * that is not resident ends the copy short.
 *
 * Return: the bytes copied, or -ENOMEM if not even the first page could
 * be mapped.
 */
ssize_t folio_copy_from_iter_no_direct_map(struct folio *folio, size_t offset, size_t bytes,
					   struct iov_iter *i)
{
	size_t copied = 0;

	VM_WARN_ON_FOLIO(!folio_test_locked(folio), folio);
	if (WARN_ON_ONCE(offset + bytes > folio_size(folio)))
		return -EINVAL;
	while (copied < bytes) {
		size_t at = offset + copied, in_page = offset_in_page(at);
		size_t n = min(bytes - copied, PAGE_SIZE - in_page), done;
		struct page *page = folio_page(folio, at >> PAGE_SHIFT);
		unsigned long addr;
		void *p = vmap(&page, 1, VM_MAP, PAGE_KERNEL);

		if (!p)
			return copied ?: -ENOMEM;
		pagefault_disable();
		done = copy_from_iter(p + in_page, n, i);
		pagefault_enable();
		addr = (unsigned long)p;
		vunmap(p);
		/* vunmap() flushes lazily: the guest's data must not stay reachable. */
		flush_tlb_kernel_range(addr, addr + PAGE_SIZE);
		copied += done;
		if (done < n)
			break;
	}
	return copied;
}
EXPORT_SYMBOL_GPL(folio_copy_from_iter_no_direct_map);
