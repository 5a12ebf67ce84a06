// SPDX-License-Identifier: GPL-2.0

//! Folios: refcounted, and locked through a guard.

use crate::{
    bindings,
    iov::IovIterSource,
    mm::filemap::AddressSpace,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::{
    cell::Cell,
    ops::Deref,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};

/// A `struct folio`.
///
/// # Invariants
///
/// A `&Folio` is backed by a reference the holder owns or borrows for its lifetime.
#[repr(transparent)]
pub struct Folio(Opaque<bindings::folio>);

// SAFETY: Folio refcounts are atomic and folios may be used from any thread.
unsafe impl Send for Folio {}
// SAFETY: Shared references only allow thread-safe operations (flag tests use atomics).
unsafe impl Sync for Folio {}

// SAFETY: `folio_get`/`folio_put` keep the folio alive while a reference is held.
unsafe impl AlwaysRefCounted for Folio {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `&self` proves a reference is held.
        unsafe { bindings::folio_get(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns.
        unsafe { bindings::folio_put(obj.cast().as_ptr()) };
    }
}

impl Folio {
    /// Borrows a folio.
    ///
    /// # Safety
    ///
    /// `ptr` must be a folio on which a reference is held for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::folio) -> &'a Folio {
        // SAFETY: `repr(transparent)`, and validity is guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct folio`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::folio {
        self.0.get()
    }

    /// The page frame number of its first page.
    #[inline]
    pub fn pfn(&self) -> u64 {
        // SAFETY: The folio is valid.
        unsafe { bindings::folio_pfn(self.as_raw()) as u64 }
    }

    /// Its order: it spans `1 << order` pages.
    #[inline]
    pub fn order(&self) -> u32 {
        // SAFETY: The folio is valid.
        unsafe { bindings::folio_order(self.as_raw()) }
    }

    /// Its index in its file, in pages.
    #[inline]
    pub fn index(&self) -> u64 {
        // SAFETY: The folio is valid.
        unsafe { bindings::folio_index(self.as_raw()) as u64 }
    }

    /// Its flags word, as an atomic: read in place rather than through a C helper, because the
    /// fault path tests it on every fault. No field path: 6.18 wraps the word in
    /// `memdesc_flags_t`; `rust/helpers/folio.c` checks at build time that it is the folio's
    /// first word and one `unsigned long`.
    #[inline]
    fn flags(&self) -> &AtomicUsize {
        // SAFETY: The folio is valid while `&self` is, and its first word is its flags (checked
        // at build time). While others can reach the folio (as we can, through a reference),
        // the kernel changes them with atomic bit operations; its non-atomic
        // `__folio_set_*()` forms are for folios nobody else can reach yet or any more
        // (allocation, freeing, a split with the refcount frozen, which a reference of ours
        // prevents).
        unsafe { AtomicUsize::from_ptr(self.as_raw().cast()) }
    }

    /// Whether flag `bit` is set; acquire, so that what was written before it was set (the
    /// contents, for `PG_uptodate`) is visible after, as `smp_rmb()` does in C.
    #[inline]
    fn test_flag(&self, bit: bindings::pageflags) -> bool {
        self.flags().load(Ordering::Acquire) & (1 << bit) != 0
    }

    /// Whether flag `bit` is set, with no ordering: for flags that change only under the
    /// folio's lock, read with it held.
    #[inline]
    fn test_flag_relaxed(&self, bit: bindings::pageflags) -> bool {
        self.flags().load(Ordering::Relaxed) & (1 << bit) != 0
    }

    /// Whether its contents are valid (for guest memory: prepared for the guest).
    #[inline]
    pub fn test_uptodate(&self) -> bool {
        self.test_flag(bindings::pageflags_PG_uptodate)
    }

    /// Whether a memory error was found in it.
    #[inline]
    pub fn test_hwpoison(&self) -> bool {
        #[cfg(CONFIG_MEMORY_FAILURE)]
        return self.test_flag(bindings::pageflags_PG_hwpoison);
        #[cfg(not(CONFIG_MEMORY_FAILURE))]
        return false;
    }
}

/// Where a locked folio is ([`LockedFolio::span`]): its mapping, its first page's index in
/// it and its order. A copy: true while the folio stays locked.
#[derive(Clone, Copy)]
pub struct FolioSpan {
    mapping: *mut bindings::address_space,
    index: u64,
    order: u32,
}

impl FolioSpan {
    /// The index of its first page in its file.
    #[inline]
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Its order: it spans `1 << order` pages.
    #[inline]
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Whether the folio holds page `index` of its file.
    #[inline]
    fn covers(&self, index: u64) -> bool {
        self.index <= index && index - self.index < 1 << self.order
    }

    /// Whether the folio belongs to `mapping` and holds page `index` of it.
    #[inline]
    pub fn holds(&self, mapping: &AddressSpace, index: u64) -> bool {
        self.mapping == mapping.as_raw() && self.covers(index)
    }
}

/// A locked folio with a reference: unlocked and put on drop.
///
/// # Invariants
///
/// `folio` is locked by this guard and a reference on it is owned by it. `span`, once set, is
/// the folio's span, read under this guard's lock (and so still true).
#[must_use = "the folio is unlocked when the guard is dropped"]
pub struct LockedFolio {
    folio: ARef<Folio>,
    span: Cell<Option<FolioSpan>>,
    _not_send: crate::types::NotThreadSafe,
}

impl LockedFolio {
    /// Takes over a locked folio with a reference, as `filemap_grab_folio` returns it.
    ///
    /// # Safety
    ///
    /// `ptr` must be locked by the caller and carry a reference; both pass to the result.
    #[inline]
    pub unsafe fn from_raw_locked(ptr: NonNull<bindings::folio>) -> Self {
        // SAFETY: The caller transfers its reference.
        let folio = unsafe { ARef::from_raw(ptr.cast()) };
        // INVARIANT: The caller transfers the lock and the reference.
        Self {
            folio,
            span: Cell::new(None),
            _not_send: crate::types::NotThreadSafe,
        }
    }

    /// Where the folio is. Stable while it is locked: truncation takes the lock to remove it,
    /// and a split to change it; so it is read once per guard.
    #[inline]
    pub fn span(&self) -> FolioSpan {
        if let Some(span) = self.span.get() {
            return span;
        }
        let folio = self.as_raw();
        // Read here, not by a C helper: faults read it, and the call cost as much as the
        // rest of the check. A folio is large if its head flag is set, as `folio_order()`
        // tests; then its order comes from C.
        let order = if self.test_flag_relaxed(bindings::pageflags_PG_head) {
            // SAFETY: The folio is valid.
            unsafe { bindings::folio_order(folio) }
        } else {
            0
        };
        // SAFETY: The folio is valid, and locked: its mapping and index change only under its
        // lock (truncation, split), so plain reads of them race with no writer. The two fields
        // are read in place, with no reference to the rest of the struct, which others change.
        let (mapping, index) = unsafe {
            (
                (*folio).__bindgen_anon_1.__bindgen_anon_1.mapping,
                (*folio).__bindgen_anon_1.__bindgen_anon_1.index as u64,
            )
        };
        let span = FolioSpan {
            mapping,
            index,
            order,
        };
        // INVARIANT: Read under the guard's lock.
        self.span.set(Some(span));
        span
    }

    /// Unlocks the folio and hands its reference to whoever receives the pfn of page `index`
    /// of its file (KVM releases it with `kvm_release_pfn_clean`); `EFAULT`, and the folio
    /// unlocked and put, if the folio does not hold that page or is not uptodate (its contents
    /// would be whatever the page last held). Crate-private: only the trampolines that checked
    /// the folio against its file hand pfns out.
    #[inline]
    pub(crate) fn into_page_pfn(self, index: u64) -> crate::error::Result<u64> {
        // The guard's own span, not the caller's: the pfn comes from the folio.
        let span = self.span();
        if !span.covers(index) || !self.test_uptodate() {
            return Err(crate::error::code::EFAULT);
        }
        let pfn = self.pfn() + (index - span.index);
        // The reference now belongs to the pfn's receiver.
        let _ = ARef::into_raw(self.unlock());
        Ok(pfn)
    }

    /// Hands the lock and the reference to the MM, as a fault handler's
    /// `VM_FAULT_LOCKED` page: the page of `mapping` at `index`, or `None` (and the folio
    /// unlocked and put) if the folio does not hold it or is not uptodate. Crate-private: for
    /// [`VmOperations`]'s trampoline, which checks against the faulting file.
    ///
    /// [`VmOperations`]: crate::mm::virt::VmOperations
    #[inline]
    pub(crate) fn into_locked_page(
        self,
        mapping: &AddressSpace,
        index: u64,
    ) -> Option<*mut bindings::page> {
        let span = self.span();
        if !span.holds(mapping, index) || !self.test_uptodate() {
            return None;
        }
        // The lock and the reference pass to the caller with the page: never dropped.
        let this = core::mem::ManuallyDrop::new(self);
        let n = (index - span.index) as usize;
        if n == 0 {
            // The first page is the folio itself (its `page` is its first field: checked in
            // `rust/helpers/folio.c`), as `folio_page(folio, 0)` gives it: no call for an
            // order-0 folio.
            return Some(this.as_raw().cast());
        }
        // SAFETY: The folio is referenced and holds the page `n` pages into it.
        Some(unsafe { bindings::folio_page(this.as_raw(), n) })
    }

    /// Maps the whole folio into the faulting mapping with one PMD, for a fault handler that
    /// allows it: `Ok(())` if mapped (the mapping took the reference, the folio is unlocked),
    /// otherwise the folio back and the `VM_FAULT_*` code that says why (`VM_FAULT_FALLBACK`:
    /// the VMA, the folio or the page table do not allow it; map the page alone). Crate-private:
    /// for [`VmOperations`]'s trampoline.
    ///
    /// # Safety
    ///
    /// `vmf` is the fault being handled, of a mapping of `mapping`'s file, at page `index`.
    ///
    /// [`VmOperations`]: crate::mm::virt::VmOperations
    #[inline]
    pub(crate) unsafe fn map_pmd(
        self,
        vmf: *mut bindings::vm_fault,
        mapping: &AddressSpace,
        index: u64,
    ) -> core::result::Result<(), (Self, bindings::vm_fault_t)> {
        let fallback = bindings::vm_fault_reason_VM_FAULT_FALLBACK as bindings::vm_fault_t;
        let span = self.span();
        if span.order() != crate::mm::PMD_ORDER
            || !span.holds(mapping, index)
            || !self.test_uptodate()
        {
            return Err((self, fallback));
        }
        // SAFETY: `vmf` is the fault being handled (the caller guarantees it); the folio is
        // locked, referenced, uptodate and the mapping's, holding the faulting page.
        let ret = unsafe { bindings::vmf_map_folio_pmd(vmf, self.as_raw()) };
        if ret != 0 {
            return Err((self, ret));
        }
        // The PMD now holds the reference.
        let _ = ARef::into_raw(self.unlock());
        Ok(())
    }

    /// Fills the folio with zeros, before its first use: `EEXIST` if it is uptodate, as its
    /// contents may then be a guest's, which the host must not write (on SEV-SNP, a write to a
    /// guest-owned page faults).
    #[inline]
    fn zero(&self) -> crate::error::Result {
        if self.test_uptodate() {
            return Err(crate::error::code::EEXIST);
        }
        // SAFETY: The folio is referenced, locked (which orders this with the lock's other
        // holders, who check uptodate first) and not uptodate: nothing has handed its pages to
        // a guest or a user yet.
        unsafe { bindings::folio_zero(self.as_raw()) };
        Ok(())
    }

    /// Makes the folio ready for its first use, unless it is uptodate already: zeroes it, so
    /// that nobody sees what its pages held before, runs `prepare` on it (the arch's
    /// preparation of guest memory), and marks it uptodate. An error of `prepare` leaves it
    /// not uptodate. The one public way to mark a folio uptodate: the pfns and pages that the
    /// abstractions hand to KVM and to the MM are those of uptodate folios only.
    #[inline]
    pub fn init_once(
        &self,
        prepare: impl FnOnce(&LockedFolio) -> crate::error::Result,
    ) -> crate::error::Result {
        if self.test_uptodate() {
            return Ok(());
        }
        self.zero()?;
        prepare(self)?;
        self.mark_uptodate()
    }

    /// Marks its contents valid; in a mapping whose uptodate folios are out of the direct map
    /// (`AS_NO_DIRECT_MAP`), takes it out first (`ENOMEM` if the direct map could not be
    /// split: then it stays not uptodate). Release, so that its contents are written before
    /// the flag is seen, as `smp_wmb()` does in C's `folio_mark_uptodate()`. Crate-private:
    /// only after the folio was zeroed ([`LockedFolio::init_once`]) or filled (populate).
    #[inline]
    pub(crate) fn mark_uptodate(&self) -> crate::error::Result {
        if self.no_direct_map() {
            // SAFETY: The folio is locked and not uptodate (`init_once`, populate check).
            crate::error::to_result(unsafe { bindings::folio_zap_direct_map(self.as_raw()) })?;
        }
        self.set_uptodate_flag();
        Ok(())
    }

    /// Whether its mapping keeps uptodate folios out of the direct map (C's
    /// `mapping_no_direct_map()`): read in place, not through a C helper, because every first
    /// fault asks (the call made a fault 1% dearer than C's, counted under QEMU -icount).
    #[inline]
    fn no_direct_map(&self) -> bool {
        let mapping = self.span().mapping;
        if !cfg!(CONFIG_X86_64) || mapping.is_null() {
            return false;
        }
        // SAFETY: The folio is locked, so it stays in its mapping, which is valid; the flags
        // word is read in place, with no reference to the rest of the struct. The kernel
        // changes it with atomic bit operations only.
        let flags =
            unsafe { AtomicUsize::from_ptr(core::ptr::addr_of_mut!((*mapping).flags).cast()) };
        flags.load(Ordering::Relaxed) & (1usize << bindings::mapping_flags_AS_NO_DIRECT_MAP) != 0
    }

    #[inline]
    fn set_uptodate_flag(&self) {
        // The folio is locked, as marking it requires.
        self.flags()
            .fetch_or(1 << bindings::pageflags_PG_uptodate, Ordering::Release);
    }

    /// Whether any page of it has a memory error (a large folio that could not be split keeps
    /// the poisoned page inside).
    #[inline]
    pub fn contains_hwpoison(&self) -> bool {
        // SAFETY: The folio is locked and referenced.
        unsafe { bindings::folio_contain_hwpoisoned_page(self.as_raw()) }
    }

    /// Whether page `index` of its file, which the folio holds, has a memory error (for a
    /// large folio, one page's error is not the others'). `false` for a page it does not hold.
    #[inline]
    pub fn page_hwpoison(&self, index: u64) -> bool {
        let span = self.span();
        if !span.covers(index) {
            return false;
        }
        if span.order == 0 {
            return self.test_hwpoison();
        }
        // SAFETY: The folio is locked and referenced, and holds the page (checked above).
        unsafe { bindings::folio_page_hwpoison(self.as_raw(), (index - span.index) as usize) }
    }

    /// Zeroes the pages of `[start, end)` of its file that the folio holds, in place, but for
    /// pages with a memory error; where the folio is out of the direct map, around it
    /// (`ENOMEM` if the direct map could not be split for that: nothing zeroed).
    /// Crate-private: who may write a folio's contents is for the owner of its page cache to
    /// say, and the abstractions that own one call this when they truncate pages that could
    /// not be freed.
    pub(crate) fn zero_file_pages(&self, start: u64, end: u64) -> crate::error::Result {
        let span = self.span();
        let first = start.max(span.index);
        let last = end.min(span.index + (1u64 << span.order));
        if first >= last {
            return Ok(());
        }
        // SAFETY: The folio is referenced, so its pages are allocated, and locked; pages
        // `[first, last)` are its own (clamped above). No Rust reference to a folio's contents
        // exists, so plain writes to them race with nothing the language knows of.
        crate::error::to_result(unsafe {
            bindings::folio_zero_pages(
                self.as_raw(),
                (first - span.index) as usize,
                (last - first) as usize,
            )
        })
    }

    /// Writes the pages of its file from page `index` on (at most `max` of them, those the folio
    /// holds) from `iter`, and returns how many it wrote whole: 0 if the source faulted (the
    /// copy runs with page faults disabled: fault it in and retry), with `iter` where it was.
    /// A folio not yet uptodate is filled through the direct map (it is in it until then), its
    /// other pages zeroed, and marked uptodate (or zeroed again, and `iter` put back, if that
    /// fails); an uptodate one is overwritten in place,
    /// through a temporary mapping if it is out of the direct map. `EHWPOISON` if the page at
    /// `index` has a memory error, `EINVAL` if the folio does not hold it, `ENOMEM` if the
    /// direct map could not be changed (nothing marked). Crate-private, as
    /// [`LockedFolio::zero_file_pages`].
    #[inline]
    pub(crate) fn write_from_iter(
        &self,
        index: u64,
        max: u64,
        iter: &mut IovIterSource<'_>,
    ) -> crate::error::Result<u64> {
        const SHIFT: u32 = crate::page::PAGE_SHIFT as u32;
        let span = self.span();
        if !span.covers(index) {
            return Err(crate::error::code::EINVAL);
        }
        if self.page_hwpoison(index) {
            return Err(crate::error::code::EHWPOISON);
        }
        let total = 1u64 << span.order;
        let first = index - span.index;
        // Around a poisoned page, a page at a time: none is read or written.
        let n = if span.order > 0 && self.contains_hwpoison() {
            1
        } else {
            max.min(total - first)
        };
        let uptodate = self.test_uptodate();
        // SAFETY: The folio is locked and referenced; `[first, first + n)` are its own pages
        // (clamped above) and `iter` is a source. No Rust reference to a folio's contents
        // exists, so plain writes to them race with nothing the language knows of.
        let copied = unsafe {
            bindings::folio_copy_from_iter(
                self.as_raw(),
                (first << SHIFT) as usize,
                (n << SHIFT) as usize,
                iter.as_raw(),
            )
        };
        if copied < 0 {
            return Err(crate::error::Error::from_errno(copied as i32));
        }
        let copied = copied as u64;
        let (whole, part) = (copied >> SHIFT, copied & ((1 << SHIFT) - 1));
        if part != 0 {
            // SAFETY: `part` bytes were just consumed from `iter`.
            unsafe { bindings::iov_iter_revert(iter.as_raw(), part as usize) };
        }
        if uptodate {
            return Ok(whole);
        }
        // SAFETY: As above, for pages of the folio; it is not uptodate, so they are in the
        // direct map and nobody has seen them.
        let zero = |from: u64, nr: u64| unsafe {
            bindings::folio_zero_pages(self.as_raw(), from as usize, nr as usize)
        };
        // A folio that does not become uptodate keeps nothing of the source: it may be freed
        // without being zeroed.
        if whole == 0 {
            zero(first, u64::from(part != 0));
            return Ok(0);
        }
        // Calls only for a large folio: a 4 KiB write has nothing else to zero.
        if first > 0 {
            zero(0, first);
        }
        if first + whole < total {
            zero(first + whole, total - first - whole);
        }
        if let Err(e) = self.mark_uptodate() {
            zero(first, whole);
            // SAFETY: These bytes were consumed from `iter` above.
            unsafe { bindings::iov_iter_revert(iter.as_raw(), (whole << SHIFT) as usize) };
            return Err(e);
        }
        Ok(whole)
    }

    /// Splits a large folio into folios of order 0; this guard keeps the first. `EAGAIN` while
    /// someone else holds a reference (a fault waiting for the lock), `EBUSY` if it was
    /// truncated, `ENOMEM` if the page cache could not allocate for the split. Nothing to do,
    /// and `Ok`, for a folio of order 0.
    #[inline]
    pub fn split(&mut self) -> crate::error::Result {
        // SAFETY: The folio is locked and referenced, as a split requires; the lock and the
        // reference stay with its first page, which is what this guard holds afterwards.
        let ret = unsafe { bindings::folio_split(self.as_raw()) };
        // The span changed (or may have, on a partial failure): read it again next time.
        self.span.set(None);
        crate::error::to_result(ret)
    }

    /// Marks it dirty. For a page cache with no backing store the folio is the only copy of its
    /// data, and a clean folio is evicted as cache (`drop_caches`, `POSIX_FADV_DONTNEED`) with
    /// no word to its owner.
    #[inline]
    pub fn mark_dirty(&self) {
        // SAFETY: The folio is locked, which keeps its mapping stable for `folio_mark_dirty`.
        unsafe { bindings::folio_mark_dirty(self.as_raw()) };
    }

    /// Unlocks the folio, keeping the reference.
    #[inline]
    pub fn unlock(self) -> ARef<Folio> {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: The guard holds the lock (type invariant), released once here.
        unsafe { bindings::folio_unlock(this.folio.as_raw()) };
        // SAFETY: `this` is never dropped, so the reference is moved out exactly once.
        unsafe { core::ptr::read(&this.folio) }
    }
}

impl Deref for LockedFolio {
    type Target = Folio;

    #[inline]
    fn deref(&self) -> &Folio {
        &self.folio
    }
}

impl Drop for LockedFolio {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock (type invariant); the reference is put afterwards
        // when `folio` drops.
        unsafe { bindings::folio_unlock(self.folio.as_raw()) };
    }
}
