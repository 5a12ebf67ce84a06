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
 * so that zapping an aligned 2 MiB folio keeps a 2 MiB direct-map entry.
 */

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/set_memory.h>
#include <asm/tlbflush.h>

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
	return 0;
}
EXPORT_SYMBOL_GPL(folio_zap_direct_map);

/**
 * folio_restore_direct_map - give a zapped folio back its direct map
 * @folio: a folio of an AS_NO_DIRECT_MAP mapping that folio_zap_direct_map()
 *         zapped: one whose owner failed to use it, or one the page cache
 *         is freeing (uptodate)
 *
 * Cannot fail: the entries to restore are those zapped, at the same size.
 * A page with a memory error stays out of the direct map.
 */
void folio_restore_direct_map(struct folio *folio)
{
	long i, nr = folio_nr_pages(folio);

	bool poisoned = folio_test_large(folio) ? folio_test_has_hwpoisoned(folio) :
						  folio_test_hwpoison(folio);

	if (!poisoned) {
		WARN_ON_ONCE(set_direct_map_valid_noflush(folio_page(folio, 0), nr, true));
		return;
	}
	for (i = 0; i < nr; i++)
		if (!PageHWPoison(folio_page(folio, i)))
			WARN_ON_ONCE(set_direct_map_valid_noflush(folio_page(folio, i), 1, true));
}
EXPORT_SYMBOL_GPL(folio_restore_direct_map);
