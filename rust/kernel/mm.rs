// SPDX-License-Identifier: GPL-2.0

//! Memory management: folios and the page cache.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h).

pub mod filemap;
pub mod folio;
pub mod mempolicy;
pub mod virt;

/// Whether `x` (bytes) is a whole number of pages. For signed offsets, cast: the low bits are
/// the same.
#[inline]
pub const fn page_aligned(x: u64) -> bool {
    x & (crate::page::PAGE_SIZE as u64 - 1) == 0
}

/// The order of a folio that a PMD maps: 2 MiB on x86-64.
pub const PMD_ORDER: u32 = crate::bindings::PMD_SHIFT - crate::page::PAGE_SHIFT as u32;

/// Gives the scheduler a chance to run something else, in a long loop of page-cache work.
#[inline]
pub fn cond_resched() {
    // SAFETY: `cond_resched` has no preconditions: in atomic context it does not schedule (and
    // debug kernels warn).
    unsafe { crate::bindings::cond_resched() };
}
