// SPDX-License-Identifier: GPL-2.0

//! The page cache of a file (`struct address_space`) and its operations.
//!
//! # Lock order
//!
//! `invalidate_lock` (the mapping's, exclusive or shared) is taken before any folio lock, as the
//! VFS does for truncation.

use crate::{
    bindings,
    error::{code::*, from_err_ptr, Result},
    fs::Inode,
    mm::{
        folio::{Folio, LockedFolio},
        mempolicy::SharedPolicy,
    },
    prelude::*,
    static_table::StaticTable,
    types::{ForeignOwnable, NotThreadSafe, Opaque},
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};

/// A `struct address_space`.
///
/// # Invariants
///
/// The mapping is valid for the lifetime of the reference (its inode is alive).
#[repr(transparent)]
pub struct AddressSpace(Opaque<bindings::address_space>);

// SAFETY: Mappings are shared kernel objects; this type only allows thread-safe operations.
unsafe impl Sync for AddressSpace {}
// SAFETY: See above.
unsafe impl Send for AddressSpace {}

/// Allocation flags for page-cache folios.
pub type Gfp = bindings::gfp_t;

/// `GFP_HIGHUSER`: user memory, not movable.
pub const GFP_HIGHUSER: Gfp = bindings::GFP_HIGHUSER;

impl AddressSpace {
    /// Borrows a mapping.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a mapping whose inode stays alive for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::address_space) -> &'a AddressSpace {
        // SAFETY: `repr(transparent)`, validity guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct address_space`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::address_space {
        self.0.get()
    }

    /// The inode the mapping belongs to.
    #[inline]
    pub fn host(&self) -> &Inode {
        // SAFETY: `host` is the inode that embeds or owns the mapping, alive as long as it is.
        unsafe { Inode::from_raw((*self.as_raw()).host) }
    }

    /// Sets the allocation flags of new folios. Crate-private: only a file's creator may, see
    /// [`NewFile`](crate::fs::anon_file::NewFile).
    #[inline]
    pub(crate) fn set_gfp_mask(&self, gfp: Gfp) {
        // SAFETY: The mapping is valid; the flags field is written with the mapping's helper.
        unsafe { bindings::mapping_set_gfp_mask(self.as_raw(), gfp) };
    }

    /// Marks the mapping inaccessible: its folios are unmovable and unevictable, and the kernel
    /// does not read or write them on userspace's behalf. Crate-private, as `set_gfp_mask`.
    #[inline]
    pub(crate) fn set_inaccessible(&self) {
        // SAFETY: The mapping is valid; the flag is set atomically.
        unsafe { bindings::mapping_set_inaccessible(self.as_raw()) };
    }

    /// Marks the mapping's folios as out of the kernel's direct map while they are uptodate
    /// (`mm/direct_map.c`): [`LockedFolio::init_once`](crate::mm::folio::LockedFolio) takes
    /// them out, the page cache puts them back when it frees them. Crate-private, as
    /// `set_gfp_mask`, and before any folio is added.
    #[inline]
    pub(crate) fn set_no_direct_map(&self) {
        // SAFETY: The mapping is valid; the flag is set atomically.
        unsafe { bindings::mapping_set_no_direct_map(self.as_raw()) };
    }

    /// Whether the mapping's uptodate folios are out of the kernel's direct map.
    #[inline]
    pub fn no_direct_map(&self) -> bool {
        // SAFETY: The mapping is valid.
        unsafe { bindings::mapping_no_direct_map(self.as_raw()) }
    }

    /// Lets the page cache hold folios of orders up to `max` (clamped to what it supports, which
    /// is 0 without transparent huge pages). Crate-private, as `set_gfp_mask`.
    #[inline]
    pub(crate) fn set_max_folio_order(&self, max: u32) {
        // SAFETY: The mapping is valid and not shared yet (as for `set_gfp_mask`).
        unsafe { bindings::mapping_set_folio_order_range(self.as_raw(), 0, max) };
    }

    /// The largest order of folio the page cache holds.
    #[inline]
    pub fn max_folio_order(&self) -> u32 {
        // SAFETY: The mapping is valid.
        unsafe { bindings::mapping_max_folio_order(self.as_raw()) }
    }

    /// The folio holding page `index`, locked, if the page is cached. Allocates nothing.
    /// Crate-private: a locked folio of any mapping is its owner's to change.
    #[inline]
    pub(crate) fn lock_folio(&self, index: u64) -> Option<LockedFolio> {
        // SAFETY: The mapping is valid; any index is accepted.
        let folio = unsafe { bindings::filemap_lock_folio(self.as_raw(), index as usize) };
        // `ERR_PTR(-ENOENT)` when absent: no other error.
        let folio = from_err_ptr(folio).ok()?;
        // SAFETY: `filemap_lock_folio` returns a locked folio with a reference.
        Some(unsafe { LockedFolio::from_raw_locked(NonNull::new(folio)?) })
    }

    /// Whether reclaim leaves the mapping's folios alone.
    #[inline]
    pub fn is_unevictable(&self) -> bool {
        // SAFETY: The mapping is valid.
        unsafe { bindings::mapping_unevictable(self.as_raw()) }
    }

    /// Takes `invalidate_lock` exclusively: no folio is added to or removed from the mapping
    /// by another holder until the guard drops.
    #[inline]
    pub fn invalidate_lock(&self) -> InvalidateGuard<'_> {
        // SAFETY: The mapping is valid.
        unsafe { bindings::filemap_invalidate_lock(self.as_raw()) };
        // INVARIANT: The lock was just taken exclusively.
        InvalidateGuard {
            mapping: self,
            _not_send: NotThreadSafe,
        }
    }

    /// Takes `invalidate_lock` shared.
    #[inline]
    pub fn invalidate_lock_shared(&self) -> InvalidateSharedGuard<'_> {
        // SAFETY: The mapping is valid.
        unsafe { bindings::filemap_invalidate_lock_shared(self.as_raw()) };
        // INVARIANT: The lock was just taken shared.
        InvalidateSharedGuard {
            mapping: self,
            _not_send: NotThreadSafe,
        }
    }

    /// The mapping as the page cache of `A`'s operations, if it has them.
    #[inline]
    pub fn page_cache<A: AddressSpaceOperations>(&self) -> Option<&PageCache<A>> {
        // SAFETY: The mapping is valid. `A`'s table is installed only by a file's creator
        // before anyone else sees the file (`NewFile::set_aops`) and never replaced, so a
        // match is stable.
        let aops = unsafe { (*self.as_raw()).a_ops };
        if !core::ptr::eq(aops, A::table().as_raw()) {
            return None;
        }
        // SAFETY: `PageCache<A>` is a transparent `AddressSpace`; its invariant was just checked.
        Some(unsafe { &*core::ptr::from_ref(self).cast::<PageCache<A>>() })
    }
}

/// A mapping whose address-space operations are `A`'s: a page cache the owner of `A` manages,
/// with no backing store. Only such a mapping has folios added or truncated through this
/// module: another filesystem's page cache has rules of its own.
///
/// # Invariants
///
/// The mapping's `a_ops` is `A::table()`.
#[repr(transparent)]
pub struct PageCache<A: AddressSpaceOperations>(AddressSpace, PhantomData<fn(A) -> A>);

impl<A: AddressSpaceOperations> core::ops::Deref for PageCache<A> {
    type Target = AddressSpace;

    #[inline]
    fn deref(&self) -> &AddressSpace {
        &self.0
    }
}

impl<A: AddressSpaceOperations> PageCache<A> {
    /// Finds the folio at page `index`, allocating it if absent; returns it locked and dirty.
    /// A new folio is allocated on the NUMA nodes `policy` gives for that page (`None`, or no
    /// policy set there: the task's), with `order` if it can be: at `index` rounded down to
    /// it, if the allocator has one at once and no page of that range is cached; else with
    /// order 0, as where the rounded range would reach past the end of the file (a folio across
    /// the end would lose its pages past it to a later split, freed with no word to the
    /// mapping's owner).
    ///
    /// Dirty, because this page cache has no backing store: the folio is the only copy of its
    /// data, and the mm evicts clean, unmapped page-cache folios with no word to the owner
    /// (soft-offlining a page does, whatever the mapping's flags), behind a guest that maps it.
    #[inline]
    pub fn grab_folio(
        &self,
        index: u64,
        policy: Option<&SharedPolicy>,
        order: u32,
    ) -> Result<LockedFolio> {
        let order = self.order_inside(index, order);
        let sp = policy.map_or(ptr::null_mut(), SharedPolicy::as_raw);
        // SAFETY: The mapping is valid; any index and order are accepted (an order past the
        // mapping's maximum is order 0); `sp` is NULL or a valid policy.
        let folio = from_err_ptr(unsafe {
            if order == 0 {
                bindings::filemap_grab_folio_sp(self.as_raw(), index as usize, sp)
            } else {
                bindings::filemap_grab_folio_order_sp(self.as_raw(), index as usize, sp, order)
            }
        })?;
        // SAFETY: `filemap_grab_folio_sp` returns a locked folio with a reference, never NULL
        // on success.
        let folio = unsafe { LockedFolio::from_raw_locked(NonNull::new_unchecked(folio)) };
        folio.mark_dirty();
        Ok(folio)
    }

    /// Makes sure the folio holding page `index` is in the page cache, allocating it if absent,
    /// with `policy` and `order`, dirty, as [`PageCache::grab_folio`] does, and returns the
    /// index of the page after that folio. For loops that fill a range, where
    /// [`PageCache::grab_folio`] would cost several calls per page.
    #[inline]
    pub fn populate_folio(
        &self,
        index: u64,
        policy: Option<&SharedPolicy>,
        order: u32,
    ) -> Result<u64> {
        let order = self.order_inside(index, order);
        let sp = policy.map_or(ptr::null_mut(), SharedPolicy::as_raw);
        // SAFETY: The mapping is valid; any index and order are accepted; `sp` is NULL or a
        // valid policy.
        let next =
            unsafe { bindings::filemap_grab_folio_next(self.as_raw(), index as usize, sp, order) };
        if next < 0 {
            return Err(Error::from_errno(next as i32));
        }
        Ok(next as u64)
    }

    /// `order`, or 0 if the folio of that order around page `index` would reach past the end
    /// of the file. The size is read only for large orders.
    #[inline]
    fn order_inside(&self, index: u64, order: u32) -> u32 {
        if order == 0 {
            return 0;
        }
        let nr = 1u64 << order;
        let npages = self.host().size() as u64 >> crate::page::PAGE_SHIFT;
        if (index & !(nr - 1)) + nr > npages {
            0
        } else {
            order
        }
    }

    /// Takes `invalidate_lock` exclusively, for the operations that remove folios.
    /// Crate-private: who may free a page cache's folios, and after which invalidation of their
    /// users, is for the abstraction that owns it to say (for guest_memfd,
    /// [`GmemFile::punch_hole`](crate::kvm::GmemFile::punch_hole) and release).
    #[inline]
    pub(crate) fn lock_for_truncate(&self) -> TruncateGuard<'_, A> {
        TruncateGuard {
            guard: self.invalidate_lock(),
            cache: self,
        }
    }
}

/// A [`PageCache`] whose `invalidate_lock` is held exclusively: folios can be removed.
#[must_use = "the lock is released when the guard is dropped"]
pub(crate) struct TruncateGuard<'a, A: AddressSpaceOperations> {
    guard: InvalidateGuard<'a>,
    cache: &'a PageCache<A>,
}

impl<A: AddressSpaceOperations> TruncateGuard<'_, A> {
    /// Removes the folios of bytes `[start, end]` (inclusive) from the mapping, zeroing the
    /// partial pages at the edges.
    #[inline]
    pub(crate) fn truncate_range(&self, start: i64, end: i64) {
        let _ = &self.guard;
        // SAFETY: The mapping is valid and the guard excludes other truncation; the mapping's
        // a_ops are `A`'s (type invariant), with no backing store to write back to.
        unsafe { bindings::truncate_inode_pages_range(self.cache.as_raw(), start, end) };
    }

    /// Finishes a truncation of pages `[start, end)` ([`TruncateGuard::truncate_range`]) in
    /// large folios: see [`finish_partial_truncate`]. The caller has stopped the folios' users
    /// from using the range (for guest memory, zapped it), so that their references drain.
    ///
    /// Without `may_zero` (where KVM's arch prepares guest memory, SEV-SNP: the host must not
    /// write a page the hardware may still give a guest), a folio that never splits is left
    /// as it is, and the result is `EBUSY`.
    pub(crate) fn finish_partial(&self, start: u64, end: u64, may_zero: bool) -> Result {
        let size = crate::page::PAGE_SIZE as u64;
        finish_partial_truncate(self.cache, start, end, may_zero, || {
            let (first, last) = (start.saturating_mul(size), end.saturating_mul(size) - 1);
            self.truncate_range(first as i64, last as i64);
            Ok(())
        })
    }

    /// Empties the mapping and takes back the private data
    /// [`NewFile::set_aops`](crate::fs::anon_file::NewFile::set_aops) gave to `A`'s
    /// operations, unless it was taken already. After this, `A`'s callbacks get `None` as
    /// their private data.
    ///
    /// The data is unpublished first, then every folio is truncated: truncation waits for each
    /// folio's lock, so a memory-error callback that borrowed the data (it runs with a folio of
    /// the mapping locked) has returned before the data is handed back.
    pub(crate) fn take_aops_private(&self) -> Option<A::Private> {
        // SAFETY: Once the file is shared, `i_private` is only accessed through `aops_private`.
        let slot = unsafe { aops_private(self.cache) };
        let ptr = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
        self.truncate_range(0, -1);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: The mapping's a_ops are `A`'s (type invariant), so a non-NULL `i_private`
        // holds `A::Private` from `into_foreign` (`NewFile::set_aops`); the swap took it out
        // exactly once, and the truncation above waited for every borrower (see above).
        Some(unsafe { A::Private::from_foreign(ptr) })
    }
}

/// Tries at splitting a large folio while the references that make a split fail drain: the
/// first few only yield the CPU, the rest sleep 1 ms each, about 100 ms in all.
const SPLIT_TRIES: u32 = 110;
const SPLIT_SPINS: u32 = 10;

/// After a truncation of pages `[start, end)` of `mapping`: the truncation splits a large folio
/// that the range cuts, but if the split fails (someone holds a reference) 6.12 keeps the
/// folio whole, and does not zero part of an inaccessible one, so the pages would keep their
/// data. Split such a folio at either edge here, retrying while references drain, and
/// `truncate` again (also for a folio wholly inside the range, new since the truncation). If
/// it never splits: with `may_zero`, zero the range's pages in it in place (but for pages with
/// a memory error), which are freed with the rest of the folio; without, `EBUSY`. An error of
/// `truncate` is returned. Crate-private: writing a folio's contents is for its page cache's
/// owner.
pub(crate) fn finish_partial_truncate(
    mapping: &AddressSpace,
    start: u64,
    end: u64,
    may_zero: bool,
    mut truncate: impl FnMut() -> Result,
) -> Result {
    if start >= end {
        return Ok(());
    }
    let mut result = Ok(());
    for edge in [start, end - 1] {
        for tries in 1..=SPLIT_TRIES {
            let Some(mut folio) = mapping.lock_folio(edge) else {
                break;
            };
            if folio.order() == 0 {
                break;
            }
            let span = folio.span();
            let inside = span.index() >= start && span.index() + (1u64 << span.order()) <= end;
            if inside || folio.split().is_ok() {
                drop(folio);
                truncate()?;
                continue;
            }
            if tries == SPLIT_TRIES {
                if may_zero {
                    if let Err(e) = folio.zero_file_pages(start, end) {
                        result = Err(e);
                    }
                } else {
                    result = Err(EBUSY);
                }
                break;
            }
            drop(folio);
            if tries <= SPLIT_SPINS {
                crate::mm::cond_resched();
            } else {
                // SAFETY: Sleeping is allowed here: the caller truncates, which sleeps.
                unsafe { bindings::msleep(1) };
            }
        }
    }
    result
}

/// The inode's `i_private`, where the aops' private data lives, as an atomic.
///
/// # Safety
///
/// Every access to the mapping's `i_private` while it is shared goes through this.
unsafe fn aops_private(mapping: &AddressSpace) -> &AtomicPtr<c_void> {
    // SAFETY: The host inode is valid while the mapping is; `AtomicPtr` has the layout of a
    // pointer, and all concurrent accesses are atomic (the caller's promise).
    unsafe {
        AtomicPtr::from_ptr(core::ptr::addr_of_mut!(
            (*mapping.host().as_raw()).i_private
        ))
    }
}

/// `invalidate_lock` held exclusively; released on drop.
///
/// # Invariants
///
/// The guard holds `mapping`'s invalidate lock exclusively.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InvalidateGuard<'a> {
    mapping: &'a AddressSpace,
    _not_send: NotThreadSafe,
}

impl Drop for InvalidateGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock (type invariant).
        unsafe { bindings::filemap_invalidate_unlock(self.mapping.as_raw()) };
    }
}

impl InvalidateGuard<'_> {
    /// Unmaps pages `[start, end)` of the mapping from every process that maps them. With
    /// `invalidate_lock` held, a fault that takes it cannot map them again until it is
    /// dropped; one that does not meets truncation at the folio lock.
    pub fn unmap_range(&self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mapping, nr) = (self.mapping.as_raw(), (end - start) as _);
        // SAFETY: The mapping is valid; any range is accepted.
        unsafe { bindings::unmap_mapping_pages(mapping, start as _, nr, false) };
    }

    /// The first page of `[start, end)` that is used by more than the page cache: mapped by a
    /// process, or in a folio that is pinned or referenced by anyone but the page cache and
    /// the mappings of its other pages (a fault on its way to map a page holds a reference);
    /// `None` if none is. A folio that only the per-CPU LRU
    /// batches still hold is not busy: they are drained once, and the rest checked again. A
    /// 4 KiB folio with a memory error may have one reference more: memory failure keeps its
    /// own for good. Each folio is checked under its lock, which a fault holds from finding
    /// it until its page table entry is set. Allocates nothing.
    pub fn first_busy(&self, start: u64, end: u64) -> Option<u64> {
        let busy = self.scan_busy(start, end)?;
        // SAFETY: No arguments; it may sleep, as this guard's holder may.
        unsafe { bindings::lru_add_drain_all() };
        self.scan_busy(busy, end)
    }

    fn scan_busy(&self, start: u64, end: u64) -> Option<u64> {
        if start >= end {
            return None;
        }
        let mut batch = core::mem::MaybeUninit::<bindings::folio_batch>::uninit();
        // SAFETY: `batch` is writable; the helper initialises it.
        unsafe { bindings::folio_batch_init(batch.as_mut_ptr()) };
        let batch = batch.as_mut_ptr();
        let mut next = start as usize;
        let last = (end - 1) as usize;
        loop {
            let mapping = self.mapping.as_raw();
            // SAFETY: The mapping is valid and `batch` an initialised, empty batch; the call
            // fills it with referenced folios, and advances `next` past them.
            let n = unsafe { bindings::filemap_get_folios(mapping, &mut next, last, batch) };
            if n == 0 {
                return None;
            }
            let mut busy = None;
            for i in 0..n as usize {
                // SAFETY: The first `n` entries of the batch are folios it holds references
                // on, valid until it is released below.
                let folio = unsafe { (*batch).folios[i] };
                // SAFETY: As above; the caller may sleep, and `invalidate_lock` comes before
                // folio locks.
                unsafe { bindings::folio_lock(folio) };
                // SAFETY: As above.
                let (refs, maps, index, order, poisoned) = unsafe {
                    (
                        bindings::folio_ref_count(folio),
                        bindings::folio_mapcount(folio),
                        bindings::folio_index(folio) as u64,
                        bindings::folio_order(folio),
                        bindings::folio_contain_hwpoisoned_page(folio),
                    )
                };
                // The page cache holds one reference per page, the batch one, and each
                // mapping of a page one: any more is someone else's.
                let expected = (1i64 << order) + 1 + maps as i64;
                let extra = refs as i64 - expected;
                if extra != 0 && !(poisoned && order == 0 && extra == 1) {
                    busy = Some(index.max(start));
                } else {
                    // Pages of the range still (or again) mapped.
                    let stop = (index + (1u64 << order)).min(end);
                    let mut i = index.max(start);
                    while busy.is_none() && i < stop {
                        // SAFETY: As above; page `i - index` is one of the folio's.
                        if unsafe { bindings::folio_page_mapped(folio, (i - index) as _) } {
                            busy = Some(i);
                        }
                        i += 1;
                    }
                }
                // SAFETY: Locked above.
                unsafe { bindings::folio_unlock(folio) };
                if busy.is_some() {
                    break;
                }
            }
            // SAFETY: `batch` holds the references `filemap_get_folios` took; none is used
            // after this. It is empty again, ready for the next call.
            unsafe { bindings::folio_batch_release(batch) };
            if busy.is_some() {
                return busy;
            }
            crate::mm::cond_resched();
        }
    }
}

/// `invalidate_lock` held shared; released on drop.
///
/// # Invariants
///
/// The guard holds `mapping`'s invalidate lock shared.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InvalidateSharedGuard<'a> {
    mapping: &'a AddressSpace,
    _not_send: NotThreadSafe,
}

impl Drop for InvalidateSharedGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock shared (type invariant).
        unsafe { bindings::filemap_invalidate_unlock_shared(self.mapping.as_raw()) };
    }
}

/// A folio that has left its page cache, which is about to put its own references on it: what
/// [`AddressSpaceOperations::free_folio`] gets, and only it.
///
/// # Invariants
///
/// The folio has been removed from its page cache: no lookup of the mapping finds it, and it
/// is not mapped into userspace through the mapping any more. Others may still hold
/// references (a speculative lookup that has not yet seen it go, a pin taken earlier): the
/// folio is not necessarily freed when `free_folio` returns, only given up by its file.
#[repr(transparent)]
pub struct FreedFolio(Folio);

impl core::ops::Deref for FreedFolio {
    type Target = Folio;

    #[inline]
    fn deref(&self) -> &Folio {
        &self.0
    }
}

/// The outcome of handling a memory error in a folio (`enum mf_result`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MemoryFailure {
    /// Handled later, when the memory is next used (`MF_DELAYED`).
    Delayed,
    /// Not handled (`MF_IGNORED`).
    Ignored,
}

/// Address-space operations of an unmovable, unevictable page cache with no backing store.
///
/// Dirtying is a no-op, and migration is refused (the mapping is inaccessible, so the mm never
/// tries it). The other slots are the implementer's. The table lives in a `static` of the
/// implementer's ([`AopsTable`]): its address is how the mapping is recognised as `Self`'s.
#[vtable]
pub trait AddressSpaceOperations: Sized + 'static {
    /// What the callbacks get to work with, stored in the inode.
    type Private: ForeignOwnable + Send + Sync;

    /// The operations table, a `static` (`static AOPS: AopsTable<Self> = AopsTable::new();`).
    fn table() -> &'static AopsTable<Self>;

    /// A memory error was found in `folio`, which is locked and in `mapping`. `private` is
    /// `None` once the page cache's owner has taken it back (at the file's release).
    fn error_remove_folio(
        _private: Option<<Self::Private as ForeignOwnable>::Borrowed<'_>>,
        _mapping: &AddressSpace,
        _folio: &Folio,
    ) -> Result<MemoryFailure> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `folio` has left the page cache, which puts its references on it after this.
    fn free_folio(_folio: &FreedFolio) {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The `address_space_operations` of `A`, in a `static`
/// (`static AOPS: AopsTable<MyAops> = AopsTable::new();`).
pub type AopsTable<A> = StaticTable<bindings::address_space_operations, A>;

impl<A: AddressSpaceOperations> AopsTable<A> {
    /// The table of `A`'s operations.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        // SAFETY: `VTABLE` holds `A`'s trampolines and `bindings::noop_dirty_folio` only.
        unsafe { Self::from_raw(AopsVtable::<A>::VTABLE) }
    }
}

struct AopsVtable<A: AddressSpaceOperations>(PhantomData<A>);

impl<A: AddressSpaceOperations> AopsVtable<A> {
    /// # Safety
    ///
    /// Called by the mm with a valid, locked folio of `mapping`, whose a_ops are `A`'s.
    unsafe extern "C" fn error_remove_folio(
        mapping: *mut bindings::address_space,
        folio: *mut bindings::folio,
    ) -> i32 {
        // SAFETY: The mm passes a valid mapping, alive while one of its folios is locked.
        let mapping = unsafe { AddressSpace::from_raw(mapping) };
        // SAFETY: The folio is locked and referenced by the caller.
        let folio = unsafe { Folio::from_raw(folio) };
        // No invalidate_lock here: punch-hole and release hold it exclusively while they
        // truncate, which waits for this folio's lock (an ABBA deadlock if we waited for it).
        // SAFETY: `i_private` is only accessed through `aops_private` once the file is shared.
        let ptr = unsafe { aops_private(mapping) }.load(Ordering::Acquire);
        // SAFETY: A non-NULL `i_private` holds `A::Private`; `take_aops_private` unpublishes it
        // and then truncates every folio, waiting for the lock of this one (the mm checked,
        // under that lock, that the folio is in `mapping`), so the data outlives this call.
        let private = (!ptr.is_null()).then(|| unsafe { A::Private::borrow(ptr) });
        match A::error_remove_folio(private, mapping, folio) {
            Ok(MemoryFailure::Delayed) => bindings::mf_result_MF_DELAYED as i32,
            Ok(MemoryFailure::Ignored) => bindings::mf_result_MF_IGNORED as i32,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the mm (`filemap_free_folio()`) with a folio it has just removed from the page
    /// cache, before it puts the page cache's references.
    unsafe extern "C" fn free_folio(folio: *mut bindings::folio) {
        // SAFETY: The page cache's references, which the caller puts after this, keep the folio
        // alive for the call, and it has left the mapping (the `FreedFolio` invariant);
        // `FreedFolio` is a transparent `Folio`.
        A::free_folio(unsafe { &*folio.cast::<FreedFolio>() });
    }

    /// # Safety
    ///
    /// None: no argument is used. The mm calls it only for a movable mapping, which an
    /// inaccessible one is not; any other would keep its folio where it is.
    unsafe extern "C" fn migrate_folio(
        _mapping: *mut bindings::address_space,
        _dst: *mut bindings::folio,
        _src: *mut bindings::folio,
        _mode: bindings::migrate_mode,
    ) -> i32 {
        // Once: the mm may retry, and a warning per try would flood the log.
        static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            crate::pr_warn!("migrate_folio on an unmovable mapping\n");
        }
        EINVAL.to_errno()
    }

    const VTABLE: bindings::address_space_operations = bindings::address_space_operations {
        dirty_folio: Some(bindings::noop_dirty_folio),
        migrate_folio: Some(Self::migrate_folio),
        error_remove_folio: if A::HAS_ERROR_REMOVE_FOLIO {
            Some(Self::error_remove_folio)
        } else {
            None
        },
        free_folio: if A::HAS_FREE_FOLIO {
            Some(Self::free_folio)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `address_space_operations`: every other slot is empty.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}
