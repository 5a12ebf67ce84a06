// SPDX-License-Identifier: GPL-2.0

//! KVM objects a guest_memfd backend works with, and the backend registration.
//!
//! C header: [`include/linux/kvm_gmem_ops.h`](srctree/include/linux/kvm_gmem_ops.h). KVM's
//! structures stay opaque: fields are read through KVM's exported accessors. Everything is
//! `#[inline]` or generic so that the `kernel` crate itself links without KVM.
//!
//! # Lock order
//!
//! `kvm->slots_lock`, then a file's `invalidate_lock`, then `kvm->mmu_lock` (taken inside
//! [`Kvm::zap_begin`] and [`ZapGuard`]'s drop).

use crate::{
    bindings,
    error::{from_result, to_result, Result},
    fs::{
        anon_file::{fops_of, FileOperations},
        File, NotThreadSafe,
    },
    prelude::*,
    types::{ARef, AlwaysRefCounted, ForeignOwnable, Opaque},
    uaccess::UserPtr,
    ThisModule,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A VM (`struct kvm`), refcounted.
#[repr(transparent)]
pub struct Kvm(Opaque<bindings::kvm>);

// SAFETY: `struct kvm` is used from any thread; its refcount is atomic.
unsafe impl Send for Kvm {}
// SAFETY: Shared references only allow thread-safe operations.
unsafe impl Sync for Kvm {}

// SAFETY: `kvm_get_kvm`/`kvm_put_kvm` keep the VM alive while a reference is held.
unsafe impl AlwaysRefCounted for Kvm {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `&self` proves a reference is held.
        unsafe { bindings::kvm_get_kvm(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns.
        unsafe { bindings::kvm_put_kvm(obj.cast().as_ptr()) };
    }
}

impl Kvm {
    /// Borrows a VM.
    ///
    /// # Safety
    ///
    /// `ptr` must be a VM on which a reference is held for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::kvm) -> &'a Kvm {
        // SAFETY: `repr(transparent)`, validity guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct kvm`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::kvm {
        self.0.get()
    }

    /// Takes `kvm->slots_lock`: memslots do not change until the guard drops.
    #[inline]
    pub fn lock_slots(&self) -> SlotsGuard<'_> {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_slots_lock(self.as_raw()) };
        // INVARIANT: The lock was just taken.
        SlotsGuard {
            kvm: self,
            _not_send: NotThreadSafe::default(),
        }
    }

    /// Whether every gfn of `[start, end)` has the private attribute.
    #[inline]
    pub fn range_is_private(&self, start: u64, end: u64) -> bool {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_range_is_private(self.as_raw(), start, end) }
    }

    /// Runs the arch hook that prepares memory before the guest may use it.
    #[inline]
    pub fn arch_prepare(&self, gfn: u64, pfn: u64, order: u32) -> Result {
        // SAFETY: The VM is valid.
        to_result(unsafe { bindings::kvm_gmem_arch_prepare(self.as_raw(), gfn, pfn, order as i32) })
    }

    /// Begins an MMU invalidation of pgoffs `[start, end)` of a file bound to `slots`, zapping
    /// their private mappings; the guard ends it. Returns `None`, and does nothing, when
    /// `slots` is empty. Allocates nothing: the slots can come straight from a lock-protected
    /// table, which may be released before the guard (the guard borrows only the VM).
    #[inline]
    #[must_use = "the invalidation ends when the guard is dropped"]
    pub fn zap_begin<'a, 's>(
        &'a self,
        slots: impl IntoIterator<Item = &'s MemorySlot>,
        start: u64,
        end: u64,
    ) -> Option<ZapGuard<'a>> {
        let mut slots = slots.into_iter();
        let first = slots.next()?.as_raw();
        // SAFETY: `&first` is an array of one valid slot pointer, valid for the call; the VM is
        // valid.
        unsafe { bindings::kvm_gmem_zap_begin(self.as_raw(), &first, 1, start as _, end as _) };
        for slot in slots {
            // SAFETY: The slot and the VM are valid; an invalidation is in progress.
            unsafe {
                bindings::kvm_gmem_zap_more(self.as_raw(), slot.as_raw(), start as _, end as _)
            };
        }
        // INVARIANT: An invalidation was begun on `self`.
        Some(ZapGuard {
            kvm: self,
            _not_send: NotThreadSafe::default(),
        })
    }
}

/// The arch hook for memory leaving guest_memfd (pfns `[start, end)`).
#[inline]
pub fn arch_invalidate(start_pfn: u64, end_pfn: u64) {
    // SAFETY: Any range is accepted; the hook only acts on the arch's own state.
    unsafe { bindings::kvm_gmem_arch_invalidate(start_pfn, end_pfn) };
}

/// `kvm->slots_lock`, held.
///
/// # Invariants
///
/// The guard holds `kvm`'s slots_lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct SlotsGuard<'a> {
    kvm: &'a Kvm,
    _not_send: NotThreadSafe,
}

impl Drop for SlotsGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock (type invariant).
        unsafe { bindings::kvm_gmem_slots_unlock(self.kvm.as_raw()) };
    }
}

/// An MMU invalidation in progress; ended on drop.
///
/// # Invariants
///
/// `kvm_gmem_zap_begin` was called on `kvm` and its `kvm_gmem_zap_end` is still owed.
#[must_use = "the invalidation ends when the guard is dropped"]
pub struct ZapGuard<'a> {
    kvm: &'a Kvm,
    _not_send: NotThreadSafe,
}

impl Drop for ZapGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: An invalidation is in progress (type invariant); this is its one end.
        unsafe { bindings::kvm_gmem_zap_end(self.kvm.as_raw()) };
    }
}

/// A memslot (`struct kvm_memory_slot`).
#[repr(transparent)]
pub struct MemorySlot(Opaque<bindings::kvm_memory_slot>);

// SAFETY: Memslots are shared between threads; the accessors used here are safe to call
// concurrently (binding fields are written with WRITE_ONCE and read with READ_ONCE).
unsafe impl Sync for MemorySlot {}
// SAFETY: See above.
unsafe impl Send for MemorySlot {}

impl MemorySlot {
    /// Borrows a memslot.
    ///
    /// # Safety
    ///
    /// `ptr` must be a memslot that stays allocated for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::kvm_memory_slot) -> &'a MemorySlot {
        // SAFETY: `repr(transparent)`, validity guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct kvm_memory_slot`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::kvm_memory_slot {
        self.0.get()
    }

    /// Its first gfn.
    #[inline]
    pub fn base_gfn(&self) -> u64 {
        // SAFETY: The slot is valid.
        unsafe { bindings::kvm_gmem_slot_base_gfn(self.as_raw()) }
    }

    /// Its size in pages.
    #[inline]
    pub fn npages(&self) -> u64 {
        // SAFETY: The slot is valid.
        unsafe { bindings::kvm_gmem_slot_npages(self.as_raw()) as u64 }
    }

    /// The page offset in the guest_memfd where the slot starts.
    #[inline]
    pub fn pgoff(&self) -> u64 {
        // SAFETY: The slot is valid.
        unsafe { bindings::kvm_gmem_slot_pgoff(self.as_raw()) as u64 }
    }

    /// The page offset in the file of `gfn`, a gfn of this slot.
    #[inline]
    pub fn index_of(&self, gfn: u64) -> u64 {
        gfn - self.base_gfn() + self.pgoff()
    }

    /// Publishes the slot's binding to `file` at page offset `pgoff`.
    #[inline]
    pub fn set_file(&self, file: &File, pgoff: u64) {
        // SAFETY: The slot and the file are valid; the slot does not keep a reference to the
        // file (the file pins the VM, not the other way round), and the binding is cleared
        // before the file is freed.
        unsafe { bindings::kvm_gmem_slot_set_file(self.as_raw(), file.as_raw(), pgoff as _) };
    }

    /// Clears the slot's file: faults on it fail from now on.
    #[inline]
    pub fn clear_file(&self) {
        // SAFETY: The slot is valid.
        unsafe { bindings::kvm_gmem_slot_set_file(self.as_raw(), core::ptr::null_mut(), 0) };
    }

    /// A reference on the slot's file, unless it is closed or being closed.
    #[inline]
    pub fn get_file(&self) -> Option<ARef<File>> {
        // SAFETY: The slot is valid; the result is NULL or a new reference.
        let file = unsafe { bindings::kvm_gmem_slot_get_file(self.as_raw()) };
        // SAFETY: A non-NULL result is a file reference we now own.
        NonNull::new(file).map(|f| unsafe { File::from_raw_owned(f) })
    }
}

/// A memslot bound to one of a backend's files.
///
/// # Invariants
///
/// The slot was passed to [`GmemBackend::bind`], which succeeded, and
/// [`GmemBackend::unbind`] has not returned for it: KVM keeps it allocated until then. A
/// backend drops each `BoundSlot` of a slot in `unbind` (see [`GmemBackend`]).
pub struct BoundSlot(NonNull<bindings::kvm_memory_slot>);

// SAFETY: The slot is shared between threads; `MemorySlot` is `Sync`.
unsafe impl Send for BoundSlot {}
// SAFETY: See above.
unsafe impl Sync for BoundSlot {}

impl BoundSlot {
    /// The slot.
    #[inline]
    pub fn slot(&self) -> &MemorySlot {
        // SAFETY: The slot stays allocated while bound (type invariant).
        unsafe { MemorySlot::from_raw(self.0.as_ptr()) }
    }

    /// Whether this is `slot`.
    #[inline]
    pub fn is(&self, slot: &MemorySlot) -> bool {
        self.0.as_ptr() == slot.as_raw()
    }
}

/// The callback `kvm_gmem_populate()` runs on each prepared range.
pub struct PopulateCallback {
    f: bindings::kvm_gmem_populate_fn,
    opaque: *mut core::ffi::c_void,
}

impl PopulateCallback {
    /// Calls it for `1 << order` pages at `gfn`/`pfn`, copying from `src` (may be NULL).
    #[inline]
    pub fn call(&self, kvm: &Kvm, gfn: u64, pfn: u64, src: UserPtr, order: u32) -> Result {
        let Some(f) = self.f else { return Err(EINVAL) };
        // SAFETY: KVM gave us `f` and `opaque` together for the duration of the populate call
        // this object lives in; the VM is valid.
        to_result(unsafe {
            f(
                kvm.as_raw(),
                gfn,
                pfn,
                src as *mut core::ffi::c_void,
                order as i32,
                self.opaque,
            )
        })
    }
}

/// A guest_memfd backend.
///
/// Its files are created with [`NewFile::create`](crate::fs::anon_file::NewFile::create) and
/// file operations `Fops`, whose data is [`GmemBackend::FileData`]. Two rules keep the slots it
/// stores alive: a backend drops the [`BoundSlot`]s of a slot in [`GmemBackend::unbind`], and
/// its file release takes `kvm->slots_lock` ([`Kvm::lock_slots`]) before it clears the
/// bindings, clears the slots' files and drops them (KVM frees slots under that lock).
#[vtable]
pub trait GmemBackend: Sized + 'static {
    /// The module the backend lives in.
    const OWNER: &'static ThisModule;

    /// The file operations of the backend's files.
    type Fops: FileOperations<Data = Self::FileData>;

    /// What the backend's files hold in `private_data`.
    type FileData: ForeignOwnable + Send + Sync;

    /// `KVM_CREATE_GUEST_MEMFD`: returns the new file descriptor.
    fn create(kvm: &Kvm, size: u64, flags: u64) -> Result<u32>;

    /// Binds the new, not yet visible `slot` to `file` at byte `offset`.
    fn bind(
        kvm: &Kvm,
        slot: BoundSlot,
        file: &File,
        data: <Self::FileData as ForeignOwnable>::Borrowed<'_>,
        offset: u64,
    ) -> Result;

    /// Undoes [`GmemBackend::bind`] for `slot`. `data` is that of the slot's file, or `None`
    /// if the file's release has already dropped the binding.
    fn unbind(slot: &MemorySlot, data: Option<<Self::FileData as ForeignOwnable>::Borrowed<'_>>);

    /// The pfn backing `gfn` of `slot` with a page reference for KVM, and the mapping order.
    fn get_pfn(
        kvm: &Kvm,
        slot: &MemorySlot,
        file: &File,
        data: <Self::FileData as ForeignOwnable>::Borrowed<'_>,
        gfn: u64,
    ) -> Result<(u64, u32)>;

    /// `kvm_gmem_populate()`: returns the number of pages done.
    #[allow(clippy::too_many_arguments)]
    fn populate(
        kvm: &Kvm,
        slot: &MemorySlot,
        file: &File,
        data: <Self::FileData as ForeignOwnable>::Borrowed<'_>,
        gfn: u64,
        src: UserPtr,
        npages: i64,
        cb: &PopulateCallback,
    ) -> Result<i64>;
}

struct BackendVtable<T: GmemBackend>(PhantomData<T>);

impl<T: GmemBackend> BackendVtable<T> {
    /// The data of `file`, which must be one of `T`'s (KVM checked its `f_op`).
    ///
    /// # Safety
    ///
    /// The caller holds a reference on `file` for `'a`, and `file` has `T::Fops` operations.
    unsafe fn data<'a>(file: &'a File) -> <T::FileData as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: Files of `T::Fops` hold `T::FileData` from `into_foreign`, given back only in
        // release, which cannot run while a reference is held.
        unsafe { T::FileData::borrow(file.private_data()) }
    }

    unsafe extern "C" fn create(kvm: *mut bindings::kvm, size: u64, flags: u64) -> i32 {
        // SAFETY: KVM holds a VM reference during the ioctl.
        let kvm = unsafe { Kvm::from_raw(kvm) };
        from_result(|| Ok(T::create(kvm, size, flags)? as i32))
    }

    unsafe extern "C" fn bind(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        file: *mut bindings::file,
        offset: u64,
    ) -> i32 {
        from_result(|| {
            // SAFETY: KVM passes a referenced VM and a referenced file of this backend (it
            // checked `f_op`), valid for the call.
            let (kvm, file) = unsafe { (Kvm::from_raw(kvm), File::from_raw(file)) };
            // INVARIANT: The slot stays allocated until unbind; it is only kept if bind
            // succeeds, since on failure KVM frees it without an unbind.
            let slot = BoundSlot(NonNull::new(slot).ok_or(EINVAL)?);
            // SAFETY: As above.
            let data = unsafe { Self::data(file) };
            T::bind(kvm, slot, file, data, offset)?;
            Ok(0)
        })
    }

    unsafe extern "C" fn unbind(slot: *mut bindings::kvm_memory_slot) {
        // SAFETY: KVM passes a slot bound to this backend, valid for the call.
        let slot = unsafe { MemorySlot::from_raw(slot) };
        // SAFETY: KVM calls unbind with `slots_lock` held. A non-NULL file is one of ours whose
        // release has not cleared the slot: release clears it under `slots_lock` (see
        // `GmemBackend`) before the file and its data are freed, so both are alive here even
        // if the file's refcount already dropped to zero.
        let data = unsafe {
            let file = bindings::kvm_gmem_slot_file(slot.as_raw());
            if file.is_null() {
                None
            } else {
                Some(T::FileData::borrow((*file).private_data))
            }
        };
        T::unbind(slot, data);
    }

    unsafe extern "C" fn get_pfn(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        gfn: u64,
        pfn: *mut u64,
        max_order: *mut i32,
    ) -> i32 {
        // SAFETY: KVM passes a referenced VM and a slot of this backend, valid for the call.
        let (kvm, slot) = unsafe { (Kvm::from_raw(kvm), MemorySlot::from_raw(slot)) };
        from_result(|| {
            let file = slot.get_file().ok_or(EFAULT)?;
            // SAFETY: We hold a reference; the slot is ours, so is its file.
            let data = unsafe { Self::data(&file) };
            let (p, order) = T::get_pfn(kvm, slot, &file, data, gfn)?;
            // SAFETY: `pfn` is a valid out-pointer; `max_order` may be NULL.
            unsafe {
                *pfn = p;
                if !max_order.is_null() {
                    *max_order = order as i32;
                }
            }
            Ok(0)
        })
    }

    unsafe extern "C" fn populate(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        gfn: u64,
        src: *mut core::ffi::c_void,
        npages: crate::ffi::c_long,
        f: bindings::kvm_gmem_populate_fn,
        opaque: *mut core::ffi::c_void,
    ) -> crate::ffi::c_long {
        // SAFETY: KVM passes a referenced VM and a slot of this backend, valid for the call.
        let (kvm, slot) = unsafe { (Kvm::from_raw(kvm), MemorySlot::from_raw(slot)) };
        let cb = PopulateCallback { f, opaque };
        from_result(|| {
            let file = slot.get_file().ok_or(EFAULT)?;
            // SAFETY: We hold a reference; the slot is ours, so is its file.
            let data = unsafe { Self::data(&file) };
            let done = T::populate(
                kvm,
                slot,
                &file,
                data,
                gfn,
                src as UserPtr,
                npages as i64,
                &cb,
            )?;
            Ok(done as crate::ffi::c_long)
        })
    }

    const VTABLE: bindings::kvm_gmem_ops = bindings::kvm_gmem_ops {
        owner: T::OWNER.as_ptr(),
        fops: core::ptr::null(),
        create: Some(Self::create),
        bind: Some(Self::bind),
        unbind: Some(Self::unbind),
        get_pfn: Some(Self::get_pfn),
        populate: Some(Self::populate),
    };
}

/// A registered backend; unregistered on drop.
///
/// # Invariants
///
/// `ops` is registered with KVM and lives in this (pinned, heap-allocated) object.
pub struct Registration<T: GmemBackend> {
    ops: KBox<bindings::kvm_gmem_ops>,
    _p: PhantomData<T>,
}

// SAFETY: The registration only holds a pointer-sized box to a table of function pointers.
unsafe impl<T: GmemBackend> Send for Registration<T> {}
// SAFETY: See above; it has no interior mutability.
unsafe impl<T: GmemBackend> Sync for Registration<T> {}

impl<T: GmemBackend> Registration<T> {
    /// Registers `T`: from now on, new guest_memfds are `T`'s. `EBUSY` if another backend is
    /// registered.
    pub fn register() -> Result<Self> {
        let mut ops = KBox::new(BackendVtable::<T>::VTABLE, GFP_KERNEL)?;
        ops.fops = fops_of::<T::Fops>();
        // SAFETY: `ops` is complete and stays at its heap address until `drop` unregisters it.
        to_result(unsafe { bindings::kvm_gmem_register_ops(&*ops) })?;
        // INVARIANT: Registered just now.
        Ok(Self {
            ops,
            _p: PhantomData,
        })
    }
}

impl<T: GmemBackend> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant); after this KVM no longer hands it out, and the
        // bindings that still use it hold module references, so the module (and this box) is
        // only freed once they are gone.
        unsafe { bindings::kvm_gmem_unregister_ops(&*self.ops) };
    }
}
