// SPDX-License-Identifier: GPL-2.0

//! KVM objects a guest_memfd backend works with, and the backend registration.
//!
//! C header: [`include/linux/kvm_gmem_ops.h`](srctree/include/linux/kvm_gmem_ops.h). KVM's
//! structures stay opaque: fields are read through KVM's exported accessors. Everything is
//! `#[inline]` or generic so that the `kernel` crate itself links without KVM.
//!
//! The abstraction owns what every backend must get right the same way: each file's VM and
//! its bindings to memslots ([`GmemFile`]), binding and unbinding, the release protocol (a
//! file's bindings are dropped under `kvm->slots_lock`, under which KVM frees memslots), and
//! the checks on what a backend hands to KVM (a pfn comes from a locked folio of the file that
//! holds the faulting page). A backend provides the memory: [`GmemBackend`].
//!
//! # Lock order
//!
//! `kvm->slots_lock` (release, unbind) or the mmap lock (the VMM's faults), then a file's
//! `invalidate_lock` (under which nothing faults on user memory), then folio locks,
//! then a file's bindings lock, then `kvm->mmu_lock` (taken inside the invalidation of
//! [`GmemFile::invalidate`]). The bindings lock is a leaf but for `mmu_lock`: an invalidation
//! drops it before the caller's work (which may wait for folio locks). A private fault takes
//! none of these before the folio lock: the slot it faults on proves its binding (the
//! [`GmemFile`] invariant), as `xa_load()` under RCU does in C.

use crate::{
    bindings,
    error::{from_result, to_result, Result},
    fs::{
        anon_file::{FileOperations, FileOpsTable, FopsVtable, NewFile},
        file::flags::O_RDWR,
        File, FileDescriptorReservation, Inode, Kiocb,
    },
    iov::IovIterSource,
    mm::{
        filemap::{AddressSpaceOperations, PageCache},
        folio::{FolioSpan, LockedFolio},
        mempolicy::SharedPolicy,
        page_aligned,
        virt::{FaultFolio, VmFault, VmOperations, VmOpsTable, VmaNew},
    },
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    static_table::StaticTable,
    str::CStr,
    sync::{
        aref::{ARef, AlwaysRefCounted},
        Arc, ArcBorrow, Mutex,
    },
    types::{ForeignOwnable, NotThreadSafe, Opaque},
    uaccess::{UserPtr, UserSlice},
    ThisModule,
};
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

const PAGE_SHIFT: u32 = crate::page::PAGE_SHIFT as u32;

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
    fn lock_slots(&self) -> SlotsGuard<'_> {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_slots_lock(self.as_raw()) };
        // INVARIANT: The lock was just taken.
        SlotsGuard {
            kvm: self,
            _not_send: NotThreadSafe,
        }
    }

    /// Whether every gfn of `[start, end)` has the private attribute.
    #[inline]
    pub fn range_is_private(&self, start: u64, end: u64) -> bool {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_range_is_private(self.as_raw(), start, end) }
    }

    /// Whether the arch prepares the VM's private memory before its guest uses it (SEV-SNP):
    /// the host must then never map or write that memory.
    #[inline]
    pub fn prepares_memory(&self) -> bool {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_vm_prepares_memory(self.as_raw()) }
    }

    /// Whether the VM has private memory (on x86, `KVM_X86_SW_PROTECTED_VM` and the
    /// confidential types): its guest_memfd memory cannot start shared.
    #[inline]
    pub fn has_private_mem(&self) -> bool {
        // SAFETY: The VM is valid.
        unsafe { bindings::kvm_gmem_vm_has_private_mem(self.as_raw()) }
    }
}

/// `GUEST_MEMFD_FLAG_MMAP`: the VMM may `mmap()` the file, and memslots bound to it are
/// guest_memfd-only (KVM serves their shared faults from the file too).
pub const GUEST_MEMFD_FLAG_MMAP: u64 = bindings::GUEST_MEMFD_FLAG_MMAP as u64;
/// `GUEST_MEMFD_FLAG_INIT_SHARED`: the file's memory is shared, so the VMM's mapping may fault
/// it in; only for VMs without private memory.
pub const GUEST_MEMFD_FLAG_INIT_SHARED: u64 = bindings::GUEST_MEMFD_FLAG_INIT_SHARED as u64;
/// `GUEST_MEMFD_FLAG_NO_DIRECT_MAP`: the file's memory leaves the kernel's direct map when it
/// is first used and comes back when it is freed (`mm/direct_map.c`); GUP of its mappings
/// fails. [`GmemFile::create`] marks the mapping, so every folio a backend makes uptodate
/// follows the rule.
pub const GUEST_MEMFD_FLAG_NO_DIRECT_MAP: u64 = bindings::GUEST_MEMFD_FLAG_NO_DIRECT_MAP as u64;
/// `GUEST_MEMFD_FLAG_WRITE`: `write()` and `pwrite()` fill the file's shared memory, whole
/// pages at a time ([`GmemFops`]'s `write_iter`); offered with `INIT_SHARED`, and only by a
/// backend with [`GmemBackend::write_folio`].
pub const GUEST_MEMFD_FLAG_WRITE: u64 = bindings::GUEST_MEMFD_FLAG_WRITE as u64;

/// The flags `T`'s files take for `kvm` (`None`: for some VM): what the backend says, within
/// what KVM allows. A VM with private memory keeps its private/shared state in its memory
/// attributes, so its memory cannot start shared, whatever a backend says: host faults would
/// otherwise reach folios the guest owns. A VM whose memory the arch prepares (SEV-SNP) gets
/// no mappable files at all, and no files out of the direct map (the arch writes their pages
/// through it); nor does a kernel whose direct map cannot change. `WRITE` writes shared memory:
/// it goes with `INIT_SHARED`, and needs the backend's [`GmemBackend::write_folio`]. Flags of
/// the backend's own (not KVM's) are its to keep.
fn allowed_flags<T: GmemBackend>(kvm: Option<&Kvm>) -> u64 {
    let mut allowed = T::supported_flags(kvm);
    if !T::HAS_WRITE_FOLIO {
        allowed &= !GUEST_MEMFD_FLAG_WRITE;
    }
    // SAFETY: No arguments; reads the kernel's configuration.
    if !unsafe { bindings::kvm_gmem_no_direct_map_supported() } {
        allowed &= !GUEST_MEMFD_FLAG_NO_DIRECT_MAP;
    }
    if let Some(kvm) = kvm {
        if kvm.prepares_memory() {
            allowed &= !(GUEST_MEMFD_FLAG_MMAP
                | GUEST_MEMFD_FLAG_INIT_SHARED
                | GUEST_MEMFD_FLAG_NO_DIRECT_MAP
                | GUEST_MEMFD_FLAG_WRITE);
        } else if kvm.has_private_mem() {
            // In place, the file's attributes say which pages are shared, from the start if
            // it asks (`INIT_SHARED`). `write()` still checks the flag alone: not offered.
            allowed &= !GUEST_MEMFD_FLAG_WRITE;
            if !in_place_conversion() {
                allowed &= !GUEST_MEMFD_FLAG_INIT_SHARED;
            }
        }
    }
    allowed
}

/// Whether conversions happen in place (`kvm.gmem_in_place_conversion`, fixed at boot): a
/// guest_memfd of a VM with private memory then keeps which of its pages are private
/// ([`PrivateMap`]), `KVM_SET_MEMORY_ATTRIBUTES2` on the file changes it, and KVM reads it
/// instead of the VM's attributes.
#[inline]
pub fn in_place_conversion() -> bool {
    // SAFETY: No arguments; reads a parameter that is fixed after boot.
    unsafe { bindings::kvm_gmem_in_place_conversion() }
}

/// `KVM_MEMORY_ATTRIBUTE_PRIVATE`.
pub const KVM_MEMORY_ATTRIBUTE_PRIVATE: u64 = bindings::KVM_MEMORY_ATTRIBUTE_PRIVATE as u64;

/// `KVM_SET_MEMORY_ATTRIBUTES2`, an ioctl of the guest_memfd.
pub const KVM_SET_MEMORY_ATTRIBUTES2: u32 =
    crate::ioctl::_IOWR::<bindings::kvm_memory_attributes2>(bindings::KVMIO, 0xd2);

/// Which pages of a file are private, a bit per page (set: private), for in-place conversion.
/// Sized at creation, since the file's size is fixed: a conversion allocates nothing, nor does
/// anything that frees the file's memory; attributes outlive the pages (punch keeps them).
/// Changed under the mapping's exclusive `invalidate_lock`, inside an MMU invalidation of the
/// range; read without a lock by KVM's faults (which its invalidation sequence orders: the
/// invalidation ends under `mmu_lock`, whose release publishes the bits; a fault's check covers
/// its own gfn, so one that reads a whole block refuses a block with an invalidation under way)
/// and under the shared lock by the VMM's faults.
struct PrivateMap(KVVec<AtomicU64>);

impl PrivateMap {
    fn new(npages: u64, private: bool) -> Result<Self> {
        let words = usize::try_from(npages.div_ceil(64)).map_err(|_| EINVAL)?;
        // Charged to the VMM's memory cgroup: its size is the file's, which the VMM picks.
        let mut map = KVVec::with_capacity(words, GFP_KERNEL_ACCOUNT)?;
        let fill = if private { u64::MAX } else { 0 };
        for _ in 0..words {
            // Within the capacity reserved above: allocates nothing.
            map.push(AtomicU64::new(fill), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self(map))
    }

    /// The bits of `[start, end)`, as (word, mask) pairs.
    fn words(&self, start: u64, end: u64) -> impl Iterator<Item = (Option<&AtomicU64>, u64)> {
        let end = end.max(start);
        (start / 64..end.div_ceil(64)).map(move |w| {
            let lo = start.max(w * 64) - w * 64;
            let hi = end.min(w * 64 + 64) - w * 64;
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            (self.0.get(w as usize), mask)
        })
    }

    fn is_private(&self, index: u64) -> bool {
        self.0
            .get((index / 64) as usize)
            .is_some_and(|w| w.load(Relaxed) & (1 << (index % 64)) != 0)
    }

    /// Whether every page of `[start, end)` is private (`private`) or shared.
    fn all(&self, start: u64, end: u64, private: bool) -> bool {
        self.words(start, end).all(|(w, mask)| {
            w.is_some_and(|w| w.load(Relaxed) & mask == if private { mask } else { 0 })
        })
    }

    /// Whether the pages of `[start, end)` all have one attribute.
    fn same(&self, start: u64, end: u64) -> bool {
        self.all(start, end, self.is_private(start))
    }

    fn set(&self, start: u64, end: u64, private: bool) {
        for (w, mask) in self.words(start, end) {
            if let Some(w) = w {
                if private {
                    w.fetch_or(mask, Relaxed);
                } else {
                    w.fetch_and(!mask, Relaxed);
                }
            }
        }
    }
}

/// The arch hook for memory leaving guest_memfd: the pages of `folio`, which a guest_memfd's
/// page cache is freeing (on SEV-SNP, they go back to the host in the RMP).
#[inline]
pub fn arch_invalidate(folio: &crate::mm::filemap::FreedFolio) {
    let pfn = folio.pfn();
    // SAFETY: The range is the folio's own pages, which the file has given up (`FreedFolio`
    // invariant). The guest maps none of them: a guest_memfd's folios are freed only by
    // `GmemFile::punch_hole`, inside an invalidation of their range, or after release has
    // unbound every memslot. So the host may take them back, as C's `free_folio` does.
    unsafe { bindings::kvm_gmem_arch_invalidate(pfn, pfn + (1u64 << folio.order())) };
}

/// `kvm->slots_lock`, held.
///
/// # Invariants
///
/// The guard holds `kvm`'s slots_lock.
#[must_use = "the lock is released when the guard is dropped"]
struct SlotsGuard<'a> {
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
struct ZapGuard<'a> {
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
// concurrently: a binding's offset and flags are written only before the slot is visible
// (`bind`), and its file pointer with WRITE_ONCE, read with READ_ONCE or `get_file_active()`.
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

    /// A reference on the slot's file and the page of it that `gfn` is bound to, in one call:
    /// `EFAULT` if the file is closed or closing, `EIO` if the gfn is outside the slot. No
    /// lock: while the slot's file is this file, its binding is in the file's table
    /// ([`GmemFile`] invariant), with the slot's own range.
    #[inline]
    fn get_file_index(&self, gfn: u64) -> Result<(ARef<File>, u64)> {
        let mut index = 0;
        // SAFETY: The slot is valid and `index` is a local; the result is an error pointer or
        // a new file reference.
        let file = crate::error::from_err_ptr(unsafe {
            bindings::kvm_gmem_slot_get_file_index(self.as_raw(), gfn, &mut index)
        })?;
        // SAFETY: A non-error result is a file reference we now own, never NULL.
        let file = unsafe { File::from_raw_owned(NonNull::new_unchecked(file)) };
        Ok((file, index as u64))
    }

    /// Publishes the binding of the new slot to `file` at page offset `pgoff`, guest_memfd-only
    /// if `gmem_only`. Private: the slot does not keep a reference to the file (the file pins
    /// the VM, not the other way round), so only [`GmemFile`], which clears it in the file's
    /// release, may.
    #[inline]
    fn set_file(&self, file: &File, pgoff: u64, gmem_only: bool) {
        // SAFETY: The slot and the file are valid; the slot is not visible yet (`bind`), so its
        // flags may change. The pointer outlives neither: `GmemFile` (the only caller) clears
        // it in the file's release (`unbind_all`), before the file is freed, and in `unbind`,
        // before KVM frees the slot.
        unsafe {
            bindings::kvm_gmem_slot_set_file(self.as_raw(), file.as_ptr(), pgoff as _, gmem_only)
        };
    }

    /// Clears the slot's file: faults on it fail from now on.
    #[inline]
    fn clear_file(&self) {
        // SAFETY: The slot is valid.
        unsafe { bindings::kvm_gmem_slot_set_file(self.as_raw(), core::ptr::null_mut(), 0, false) };
    }

    /// A reference on the slot's file, unless it is closed or being closed.
    #[inline]
    fn get_file(&self) -> Option<ARef<File>> {
        // SAFETY: The slot is valid; the result is NULL or a new reference.
        let file = unsafe { bindings::kvm_gmem_slot_get_file(self.as_raw()) };
        // SAFETY: A non-NULL result is a file reference we now own.
        NonNull::new(file).map(|f| unsafe { File::from_raw_owned(f) })
    }
}

/// A range of a file, in pages, bound to a memslot; keyed in the table by its first page.
///
/// # Invariants
///
/// `slot` is allocated while the binding is in a [`GmemFile`]'s table: it is inserted by
/// `bind`, which KVM calls before it makes the slot visible, and removed in `unbind` (which
/// KVM calls before it frees the slot) or in the file's release, both under `kvm->slots_lock`.
struct Binding {
    end: u64,
    slot: NonNull<bindings::kvm_memory_slot>,
}

// SAFETY: The slot pointer is only dereferenced while the slot is allocated (type invariant),
// from any thread; `MemorySlot` is `Sync`.
unsafe impl Send for Binding {}

impl Binding {
    fn slot(&self) -> &MemorySlot {
        // SAFETY: The slot is allocated while the binding exists (type invariant), and a
        // `&Binding` borrows the table that holds it.
        unsafe { MemorySlot::from_raw(self.slot.as_ptr()) }
    }
}

type Bindings = RBTree<u64, Binding>;

/// The bindings that overlap pages `[start, end)`.
fn overlapping(bindings: &Bindings, start: u64, end: u64) -> impl Iterator<Item = &Binding> {
    bindings
        .iter()
        .filter(move |(s, b)| **s < end && start < b.end)
        .map(|(_, b)| b)
}

/// One guest_memfd file of backend `T`: the VM it belongs to (a reference: the file pins the
/// VM, never the other way round) and its bindings to memslots.
///
/// # Invariants
///
/// A memslot's file is this file exactly while the slot's binding, of pages `[pgoff, pgoff +
/// npages)` of the slot, is in `bindings`: `bind`, `unbind` and `unbind_all` change the two
/// together under the bindings lock, and nothing else sets a slot's file.
#[pin_data]
pub struct GmemFile<T: GmemBackend> {
    kvm: ARef<Kvm>,
    /// Its `GUEST_MEMFD_FLAG_*`, fixed at creation.
    flags: u64,
    /// Changed under the mapping's exclusive `invalidate_lock` and `kvm->slots_lock`, or
    /// under `slots_lock` alone when the file is being released; this mutex lets faults and
    /// invalidations read it without those locks.
    #[pin]
    bindings: Mutex<Bindings>,
    /// The NUMA policy `mbind()` on the VMM's mappings sets for the file's pages.
    #[pin]
    policy: SharedPolicy,
    /// Which pages are private, when conversion is in place and the VM has private memory.
    private: Option<PrivateMap>,
    /// Invariant in `T`, as [`StaticTable`]: one backend's state is never another's.
    _p: PhantomData<fn(T) -> T>,
}

impl<T: GmemBackend> GmemFile<T> {
    /// Creates a guest_memfd file of `size` bytes, fixed, with `flags`, for `kvm`, with the
    /// backend's page-cache operations ([`GmemBackend::Aops`]) installed, lets `setup` set up
    /// its page cache while nobody else sees it, and gives it a file descriptor, which is
    /// returned. A flag the backend does not support for `kvm`
    /// ([`GmemBackend::supported_flags`]) is `EINVAL`.
    pub fn create(
        kvm: &Kvm,
        size: u64,
        flags: u64,
        setup: impl FnOnce(&mut NewFile<GmemFops<T>>, &Arc<Self>) -> Result,
    ) -> Result<u32> {
        if flags & !allowed_flags::<T>(Some(kvm)) != 0 {
            return Err(EINVAL);
        }
        let size = i64::try_from(size).map_err(|_| EINVAL)?;
        // Not where the arch prepares private memory (SEV-SNP): such VMs keep the VM's
        // attributes (`kvm_gmem_in_place()`).
        let private = if in_place_conversion() && kvm.has_private_mem() && !kvm.prepares_memory() {
            let npages = size as u64 >> PAGE_SHIFT;
            Some(PrivateMap::new(
                npages,
                flags & GUEST_MEMFD_FLAG_INIT_SHARED == 0,
            )?)
        } else {
            None
        };
        let fd = FileDescriptorReservation::get_unused_fd_flags(0)?;
        let gmem = Arc::pin_init(
            pin_init!(Self {
                kvm: ARef::from(kvm),
                flags,
                bindings <- new_mutex!(RBTree::new(), "kvm::GmemFile::bindings"),
                policy <- SharedPolicy::new(),
                private,
                _p: PhantomData,
            }),
            GFP_KERNEL,
        )?;
        static NAME: &CStr = crate::c_str!("[kvm-gmem]");
        let mut file = NewFile::create(T::table().fops(), NAME, gmem.clone(), O_RDWR)?;
        file.set_fixed_size(size);
        // `lseek()` and `pwrite()` as in 6.12 (`ESPIPE`) on the files that do not write.
        file.set_positioned(flags & GUEST_MEMFD_FLAG_WRITE != 0);
        // The VMM's faults (on files that convert in place) take `invalidate_lock` under the
        // mmap lock, and nothing here faults on user memory under it; the built-in backend's
        // populate does, on files of its own.
        file.set_invalidate_lock_class(
            crate::static_lock_class!(),
            crate::c_str!("kvm::GmemFile::invalidate_lock"),
        );
        // The abstraction's, not the backend's: it frees the page cache (`punch_hole`,
        // release), and takes this reference back at release.
        file.install_aops::<T::Aops>(gmem.clone())?;
        if flags & GUEST_MEMFD_FLAG_NO_DIRECT_MAP != 0 {
            file.set_no_direct_map();
        }
        setup(&mut file, &gmem)?;
        // Memory the arch prepares (SEV-SNP) is prepared and handed back a folio at a time,
        // and a large folio's pages may need zeroing in place (`punch_hole`): 4 KiB only.
        if kvm.prepares_memory() && file.inode().mapping().max_folio_order() > 0 {
            return Err(EINVAL);
        }
        let nr = fd.reserved_fd();
        fd.fd_install(file.into_file());
        Ok(nr)
    }

    /// The VM the file belongs to.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// Its `GUEST_MEMFD_FLAG_*`, as created.
    pub fn flags(&self) -> u64 {
        self.flags
    }

    /// The NUMA policy of the file's pages, which `mbind()` on a mapping of the file sets:
    /// every folio the backend allocates follows it, for `fallocate()` and for faults alike.
    pub fn policy(&self) -> &SharedPolicy {
        &self.policy
    }

    /// Whether `file` is this guest_memfd's file.
    #[inline]
    fn owns(&self, file: &File) -> bool {
        // SAFETY: `file` is valid; `f_op` is fixed once the file is open.
        let fops = unsafe { (*file.as_ptr()).f_op };
        if !core::ptr::eq(fops, T::table().fops().as_raw()) {
            return false;
        }
        // SAFETY: The file has `T`'s file operations (checked above) and `&File` holds a
        // reference on it.
        let data = unsafe { BackendVtable::<T>::data(file) };
        core::ptr::eq(&*data, self)
    }

    /// The page cache of `file`, this guest_memfd's file (`EINVAL` for another file). It
    /// allocates and looks up folios; freeing them is [`GmemFile::punch_hole`]'s alone.
    #[inline]
    pub fn page_cache<'a>(&self, file: &'a File) -> Result<&'a PageCache<T::Aops>> {
        if !self.owns(file) {
            return Err(EINVAL);
        }
        file.inode().mapping().page_cache::<T::Aops>().ok_or(EINVAL)
    }

    /// Frees pages `[start, end)` of `file`, this guest_memfd's file (`EINVAL` for another),
    /// the one way to free memory of a guest_memfd before its release. Under the mapping's
    /// exclusive `invalidate_lock`, and inside an MMU invalidation of the range rounded out to
    /// the largest folio the page cache may hold (clamped to the file): KVM may map a large
    /// folio whole, and a fault may bring in a large folio around the range meanwhile, so
    /// every mapping of a page of a folio being freed or split is zapped first, and faults on
    /// them retry until the truncation is over. A large folio the range cuts is split, or
    /// its pages in the range zeroed in place if it never splits.
    pub fn punch_hole(&self, file: &File, start: u64, end: u64) -> Result {
        let cache = self.page_cache(file)?;
        let npages = file.inode().size() as u64 >> PAGE_SHIFT;
        let end = end.min(npages);
        if start >= end {
            return Ok(());
        }
        let block = 1u64 << cache.max_folio_order();
        let zap_start = start & !(block - 1);
        let zap_end = end.div_ceil(block).saturating_mul(block).min(npages);
        let truncate = cache.lock_for_truncate();
        self.invalidate(zap_start, zap_end, || {
            truncate.truncate_range(
                (start << PAGE_SHIFT) as i64,
                ((end << PAGE_SHIFT) - 1) as i64,
            );
            if block > 1 {
                // A large folio at an edge whose split failed (a fault held a reference):
                // KVM's faults on it retry now (a VMM fault may still hold one), so split it,
                // or zero the range's pages in place.
                // Not where the arch prepares the VM's memory: a page the hardware may still
                // give the guest must not be written (there `EBUSY`, and backends do not
                // offer large folios to such VMs).
                let _ = truncate.finish_partial(start, end, !self.kvm.prepares_memory());
            }
        });
        Ok(())
    }

    /// Whether page `index` of the file is bound to `slot`, read from the table. Faults use
    /// [`MemorySlot::get_file_index`] instead, which takes no lock.
    fn is_bound(&self, slot: &MemorySlot, index: u64) -> bool {
        overlapping(&self.bindings.lock(), index, index + 1)
            .any(|b| b.slot.as_ptr() == slot.as_raw())
    }

    /// Runs `f`, which removes or changes pages `[start, end)` of the file, inside an MMU
    /// invalidation of them: the guest's mappings of the pages are zapped first, and faults
    /// that race with `f` retry until it is over.
    pub fn invalidate<R>(&self, start: u64, end: u64, f: impl FnOnce() -> R) -> R {
        let zap = self.zap_begin(&self.bindings.lock(), start, end);
        let r = f();
        drop(zap);
        r
    }

    /// `KVM_SET_MEMORY_ATTRIBUTES2` at `arg`: converts pages `[offset, offset + size)` to
    /// private or shared in place. `EINVAL` for flags or reserved words, a VM without private
    /// memory or whose memory the arch prepares, an unknown attribute, or a range that is empty
    /// or not whole pages inside the file. To private, the VMM's mappings of the range are
    /// zapped first; if a page is still used by more than the page cache (mapped again by a
    /// racing fault, pinned, referenced), `EAGAIN`, nothing converted, and `error_offset` says
    /// which page. To shared needs no check: the host gains access, the guest keeps its data.
    /// KVM's mappings of the range are zapped either way, rounded out to the largest folio
    /// (KVM may map one whole), and its faults in the range retry until the change is made.
    fn set_attributes(&self, file: &File, arg: UserPtr) -> Result<i32> {
        // `struct kvm_memory_attributes2`: offset, size, attributes, flags, error_offset,
        // reserved[11].
        const WORDS: usize = 16;
        const ERROR_OFFSET: usize = 4;
        let mut reader = UserSlice::new(arg, WORDS * 8).reader();
        let mut a = [0u64; WORDS];
        for word in a.iter_mut() {
            *word = reader.read::<u64>()?;
        }
        let [offset, size, attributes, flags, _, reserved @ ..] = a;
        if flags != 0 || reserved.iter().any(|&r| r != 0) {
            return Err(EINVAL);
        }
        let map = self.private.as_ref().ok_or(EINVAL)?;
        if attributes & !KVM_MEMORY_ATTRIBUTE_PRIVATE != 0 {
            return Err(EINVAL);
        }
        let end = offset.checked_add(size).ok_or(EINVAL)?;
        if size == 0
            || !page_aligned(offset)
            || !page_aligned(size)
            || end > file.inode().size() as u64
        {
            return Err(EINVAL);
        }
        let (start, end, private) = (offset >> PAGE_SHIFT, end >> PAGE_SHIFT, attributes != 0);
        let cache = self.page_cache(file)?;
        let inval = cache.invalidate_lock();
        if map.all(start, end, private) {
            return Ok(0);
        }
        if private {
            inval.unmap_range(start, end);
            if let Some(busy) = inval.first_busy(start, end) {
                drop(inval);
                let mut out = UserSlice::new(arg + ERROR_OFFSET * 8, 8).writer();
                out.write(&(busy << PAGE_SHIFT))?;
                return Err(EAGAIN);
            }
        }
        let npages = file.inode().size() as u64 >> PAGE_SHIFT;
        let block = 1u64 << cache.max_folio_order();
        let zap_end = end.div_ceil(block).saturating_mul(block).min(npages);
        self.invalidate(start & !(block - 1), zap_end, || {
            map.set(start, end, private)
        });
        drop(inval);
        Ok(0)
    }

    /// Whether page `index` of the file is shared: the host may map it.
    fn is_shared(&self, index: u64) -> bool {
        match &self.private {
            Some(map) => !map.is_private(index),
            None => self.flags & GUEST_MEMFD_FLAG_INIT_SHARED != 0,
        }
    }

    /// Whether every page of `[start, end)` is private (`private`) or shared. Without in-place
    /// conversion, all or none of a file's pages are shared (`INIT_SHARED`).
    fn all(&self, start: u64, end: u64, private: bool) -> bool {
        match &self.private {
            Some(map) => map.all(start, end, private),
            None => (self.flags & GUEST_MEMFD_FLAG_INIT_SHARED == 0) == private,
        }
    }

    /// Begins an MMU invalidation of pages `[start, end)`, zapping their private mappings in
    /// every slot of `table` (this file's bindings) bound to them; the guard ends it.
    /// `None`, and nothing done, when no slot is. Allocates nothing. The guard borrows only
    /// the VM: the table's lock may be dropped before it.
    fn zap_begin(&self, table: &Bindings, start: u64, end: u64) -> Option<ZapGuard<'_>> {
        let kvm = self.kvm.as_raw();
        let mut slots = overlapping(table, start, end).map(|b| b.slot.as_ptr());
        let first = slots.next()?;
        // SAFETY: `&first` is an array of one slot pointer, valid for the call. The slot is
        // allocated (`Binding` invariant) and one of this VM's (`bind` checked the VM).
        unsafe { bindings::kvm_gmem_zap_begin(kvm, &first, 1, start as _, end as _) };
        for slot in slots {
            // SAFETY: As above; the invalidation begun above is in progress.
            unsafe { bindings::kvm_gmem_zap_more(kvm, slot, start as _, end as _) };
        }
        // INVARIANT: An invalidation was begun on the VM.
        Some(ZapGuard {
            kvm: &self.kvm,
            _not_send: NotThreadSafe,
        })
    }

    /// Binds the new slot to pages of `file` from byte `offset`: the contract of 6.12's
    /// `kvm_gmem_bind()`.
    ///
    /// `memslot` is new, and allocated until KVM unbinds it (the `bind` trampoline's contract).
    fn bind(&self, kvm: &Kvm, memslot: &MemorySlot, file: &File, offset: u64) -> Result {
        // Another VM's guest_memfd, or a range out of the file, is EINVAL.
        if self.kvm.as_raw() != kvm.as_raw() {
            return Err(EINVAL);
        }
        let size = memslot
            .npages()
            .checked_mul(crate::page::PAGE_SIZE as u64)
            .ok_or(EINVAL)?;
        let end_byte = offset.checked_add(size).ok_or(EINVAL)?;
        if !page_aligned(offset) || end_byte > file.inode().size() as u64 {
            return Err(EINVAL);
        }
        let (start, end) = (offset >> PAGE_SHIFT, end_byte >> PAGE_SHIFT);

        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let _inval = file.inode().mapping().invalidate_lock();
        let mut bindings = self.bindings.lock();
        if overlapping(&bindings, start, end).next().is_some() {
            return Err(EINVAL);
        }
        // The slot is not visible to the guest yet, so faults see the file once it is.
        memslot.set_file(file, start, self.flags & GUEST_MEMFD_FLAG_MMAP != 0);
        // INVARIANT: KVM keeps the slot allocated until unbind, which removes the binding.
        let slot = NonNull::from(memslot).cast();
        bindings.insert(node.into_node(start, Binding { end, slot }));
        Ok(())
    }

    /// Drops the binding of `slot`, which KVM is about to free; `slots_lock` is held.
    fn unbind(&self, slot: &MemorySlot) {
        let file = slot.get_file();
        // Taking invalidate_lock needs a file reference; a closing file's release waits for
        // slots_lock, held by our caller, so the bindings can be changed without it.
        let _inval = file.as_ref().map(|f| f.inode().mapping().invalidate_lock());
        let mut bindings = self.bindings.lock();
        let start = bindings
            .iter()
            .find(|(_, b)| b.slot.as_ptr() == slot.as_raw())
            .map(|(s, _)| *s);
        if let Some(start) = start {
            bindings.remove(&start);
        }
        slot.clear_file();
    }

    /// The first half of release: the file leaves every memslot it is bound to, whose private
    /// mappings are zapped. Under `slots_lock`, under which KVM frees memslots: a concurrent
    /// unbind either ran before (and removed its binding) or finds the slot's file cleared.
    fn unbind_all(&self, inode: &Inode) {
        let _slots = self.kvm.lock_slots();
        let _inval = inode.mapping().invalidate_lock();
        let mut bindings = self.bindings.lock();
        for b in bindings.values() {
            b.slot().clear_file();
        }
        drop(self.zap_begin(&bindings, 0, u64::MAX));
        *bindings = RBTree::new();
    }
}

/// The file operations of `T`'s guest_memfd files: the abstraction's, which call `T`'s.
pub struct GmemFops<T: GmemBackend>(PhantomData<T>);

#[vtable]
impl<T: GmemBackend> FileOperations for GmemFops<T> {
    type Data = Arc<GmemFile<T>>;
    const OWNER: &'static ThisModule = T::OWNER;

    fn release(gmem: ArcBorrow<'_, GmemFile<T>>, inode: &Inode) {
        gmem.unbind_all(inode);
        // The VM's memslots are free to change again; the memory is freed now, while the
        // module is pinned by the file (the inode is evicted after the file drops its module
        // reference), and the page cache's reference on the file state (and so on the VM)
        // is taken back, whatever the backend did.
        T::release(&gmem, inode);
        if let Some(cache) = inode.mapping().page_cache::<T::Aops>() {
            drop(cache.lock_for_truncate().take_aops_private());
        }
    }

    fn fallocate(
        gmem: ArcBorrow<'_, GmemFile<T>>,
        file: &File,
        mode: i32,
        offset: i64,
        len: i64,
    ) -> Result {
        T::fallocate(&gmem, file, mode, offset, len)
    }

    /// `write()` of a `WRITE` file: whole pages inside the file, into shared memory only
    /// (without `INIT_SHARED` the file's memory is private: `EACCES`, as a fault of the VMM's
    /// mapping gets `SIGBUS`); `ENODEV` without the flag, `EINVAL` for a range that is not
    /// whole pages inside the file or an append. Pages are allocated on demand, a few at a time
    /// under the mapping's shared `invalidate_lock`, as `fallocate()` allocates: a punch is
    /// ordered with each round. A signal or a bad source stops it: the bytes written so far,
    /// if any.
    fn write_iter(
        gmem: ArcBorrow<'_, GmemFile<T>>,
        kiocb: &mut Kiocb<'_>,
        iter: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        const SHIFT: u32 = crate::page::PAGE_SHIFT as u32;
        // Not offered without `write_folio` (`allowed_flags`); checked here too, so that the
        // call below is compiled only for backends that have it.
        if !T::HAS_WRITE_FOLIO || gmem.flags & GUEST_MEMFD_FLAG_WRITE == 0 {
            return Err(ENODEV);
        }
        let file = kiocb.file();
        // The VFS refused negative positions and `pos + len` overflows. The size is fixed:
        // an append cannot fit.
        let (pos, len) = (kiocb.ki_pos() as u64, iter.len() as u64);
        if !page_aligned(pos)
            || !page_aligned(len)
            || pos + len > file.inode().size() as u64
            || kiocb.is_append()
        {
            return Err(EINVAL);
        }
        if gmem.flags & GUEST_MEMFD_FLAG_INIT_SHARED == 0 {
            return Err(EACCES);
        }
        let cache = gmem.page_cache(file)?;
        // A round of at least this many pages (a large folio's, if more) has its source
        // faulted in, `invalidate_lock` taken and signals checked once: per page, each is a
        // call from Rust (they made a page's write 4.6% dearer than C's, counted under QEMU
        // -icount).
        const ROUND: u64 = 16;
        let round = ROUND.max(1 << cache.max_folio_order());
        let task = crate::current!();
        let (mut index, end) = (pos >> SHIFT, (pos + len) >> SHIFT);
        let mut result = Ok(());
        while index < end {
            if task.signal_pending() {
                result = Err(EINTR);
                break;
            }
            // The copy runs under the folio lock, with page faults disabled: the source is
            // faulted in first. Whole pages only: a source page that cannot be read ends the
            // write.
            let chunk = ((end - index).min(round) << SHIFT) as usize;
            let stop = index + ((chunk - iter.fault_in_readable(chunk)) >> SHIFT) as u64;
            if stop == index {
                result = Err(EFAULT);
                break;
            }
            let inval = cache.invalidate_lock_shared();
            while index < stop {
                let step = T::write_folio(&gmem, file, index).and_then(|folio| {
                    check_folio(file, &folio, index)?;
                    folio.write_from_iter(index, stop - index, iter)
                });
                match step {
                    Ok(0) => break, // the source faulted: in again
                    Ok(n) => index += n,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            drop(inval);
            if result.is_err() {
                break;
            }
            crate::mm::cond_resched();
        }
        let done = (index << SHIFT) - pos;
        if done == 0 {
            result?;
            return Ok(0);
        }
        // As in `fallocate()`: a failure to update the timestamps is not the caller's error.
        let _ = file.modified();
        *kiocb.ki_pos_mut() += done as i64;
        Ok(done as usize)
    }

    /// `KVM_SET_MEMORY_ATTRIBUTES2`, when conversion is in place; `ENOTTY` otherwise, as for
    /// any other command.
    fn ioctl(gmem: ArcBorrow<'_, GmemFile<T>>, file: &File, cmd: u32, arg: usize) -> Result<i32> {
        if cmd != KVM_SET_MEMORY_ATTRIBUTES2 || !in_place_conversion() {
            return Err(ENOTTY);
        }
        gmem.set_attributes(file, arg)
    }

    const VM_OPS: Option<&'static VmOpsTable<Self>> = Some(VmOpsTable::build());
    const PMD_ALIGNED: bool = true;

    fn mmap(gmem: ArcBorrow<'_, GmemFile<T>>, _file: &File, vma: &VmaNew) -> Result {
        if gmem.flags & GUEST_MEMFD_FLAG_MMAP == 0 {
            return Err(ENODEV);
        }
        // The guest's memory has one copy: no copy-on-write mappings.
        if !vma.is_shared() {
            return Err(EINVAL);
        }
        Ok(())
    }
}

impl<T: GmemBackend> VmOperations for GmemFops<T> {
    fn fault(
        gmem: ArcBorrow<'_, GmemFile<T>>,
        file: &File,
        pgoff: u64,
    ) -> core::result::Result<FaultFolio, VmFault> {
        // Past the end, or on a private page, the host may see nothing.
        let size = file.inode().size() as u64;
        if pgoff >= size >> PAGE_SHIFT {
            return Err(VmFault::SigBus);
        }
        // In place (the file has an attribute map), a conversion to private holds
        // `invalidate_lock` while it unmaps the range and checks that no folio is used: a
        // fault that saw the page shared holds the folio (referenced, then mapped) by the time
        // the conversion looks. Otherwise whether a page is shared never changes, and a punch
        // meets this fault at the folio's lock, as any page cache fault, so C's fault does not
        // take it either (42 instructions a fault, counted by `make insns`). Nothing faults on
        // user memory while holding it (populate copies with faults off).
        let _inval = gmem
            .private
            .is_some()
            .then(|| file.inode().mapping().invalidate_lock_shared());
        if !gmem.is_shared(pgoff) {
            return Err(VmFault::SigBus);
        }
        let folio = T::fault_user(&gmem, file, pgoff)?;
        // A folio all of whose pages are shared may be mapped whole (one PMD): a conversion
        // of any of them zaps that mapping, then finds the folio mapped if this fault maps it
        // after the zap (it holds the folio's lock until then).
        let span = folio.span();
        let end = span.index() + (1 << span.order());
        Ok(if span.order() > 0 && gmem.all(span.index(), end, false) {
            FaultFolio::whole(folio)
        } else {
            FaultFolio::page(folio)
        })
    }

    fn shared_policy<'a>(gmem: &'a ArcBorrow<'_, GmemFile<T>>) -> Option<&'a SharedPolicy> {
        Some(&gmem.policy)
    }
}

/// Where `folio` is, if it holds page `index` of `file`; a backend's folio that does not is a
/// bug, refused before its pfn reaches KVM or the arch.
#[inline]
fn check_folio(file: &File, folio: &LockedFolio, index: u64) -> Result<FolioSpan> {
    let span = folio.span();
    if span.holds(file.inode().mapping(), index) {
        return Ok(span);
    }
    crate::pr_warn!("kvm: guest_memfd backend returned a folio of another page\n");
    Err(EFAULT)
}

/// A private fault on page [`GmemFault::index`] of a file, bound to the faulting memslot.
pub struct GmemFault<'a> {
    kvm: &'a Kvm,
    file: &'a File,
    gfn: u64,
    index: u64,
}

impl GmemFault<'_> {
    /// The file.
    pub fn file(&self) -> &File {
        self.file
    }

    /// The faulting page's index in the file.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The order at which KVM may map the faulting page of `folio`, which holds it: the PMD
    /// order if the folio spans the PMD-sized, PMD-aligned range of the file around the page,
    /// the slot maps that range to an equally aligned gfn range, and no page of the folio has
    /// a memory error; otherwise 0. KVM maps less where the memory attributes of the range
    /// differ or the slot does not cover it.
    #[inline]
    pub fn map_order(&self, folio: &LockedFolio) -> u32 {
        let span = folio.span();
        let nr = 1u64 << crate::mm::PMD_ORDER;
        let first = self.index & !(nr - 1);
        if span.order() < crate::mm::PMD_ORDER
            || first < span.index()
            || first + nr > span.index() + (1u64 << span.order())
            || (self.gfn ^ self.index) & (nr - 1) != 0
            || folio.contains_hwpoison()
        {
            return 0;
        }
        crate::mm::PMD_ORDER
    }

    /// Runs the arch hook that prepares memory for the guest (on SEV-SNP, assigns it in the
    /// RMP) on `folio`, which holds the faulting page, before its first use.
    pub fn prepare(&self, folio: &LockedFolio) -> Result {
        // Without the hook there is nothing to do, and the fault's folio is checked again
        // before KVM gets its pfn: two out-of-line calls per first fault saved, as C's
        // `#ifdef` saves them.
        if !cfg!(CONFIG_HAVE_KVM_ARCH_GMEM_PREPARE) {
            return Ok(());
        }
        if !self.kvm.prepares_memory() {
            return Ok(());
        }
        // Only private memory is prepared. Such a VM has no guest_memfd-only slots (no `MMAP`
        // files), so a shared gfn here is a conversion that raced with the fault: fail it,
        // rather than mark the folio ready unprepared; the guest faults again.
        if !self.kvm.range_is_private(self.gfn, self.gfn + 1) {
            return Err(EAGAIN);
        }
        let span = check_folio(self.file, folio, self.index)?;
        let gfn = self.gfn - (self.index - span.index());
        // SAFETY: The VM is valid; the pfns are the folio's own pages, locked and referenced,
        // mapped by this VM's memslot at `gfn`.
        to_result(unsafe {
            bindings::kvm_gmem_arch_prepare(
                self.kvm.as_raw(),
                gfn,
                folio.pfn(),
                span.order() as i32,
            )
        })
    }
}

/// `kvm_gmem_populate()` of pages of a slot bound to a file, from its first gfn on.
pub struct GmemPopulate<'a> {
    kvm: &'a Kvm,
    slot: &'a MemorySlot,
    file: &'a File,
    /// The file's attributes, when conversion is in place.
    private: Option<&'a PrivateMap>,
    gfn: u64,
    npages: u64,
    src: UserPtr,
    f: bindings::kvm_gmem_populate_fn,
    opaque: *mut core::ffi::c_void,
}

impl GmemPopulate<'_> {
    /// The file.
    pub fn file(&self) -> &File {
        self.file
    }

    /// The number of pages to populate (clamped to the slot).
    pub fn npages(&self) -> u64 {
        self.npages
    }

    /// The file index of the `i`th page.
    pub fn index(&self, i: u64) -> u64 {
        self.slot.index_of(self.gfn + i)
    }

    /// Whether the `n` pages from the `i`th are all private (and inside the call).
    pub fn is_private(&self, i: u64, n: u64) -> bool {
        if !i.checked_add(n).is_some_and(|end| end <= self.npages) {
            return false;
        }
        match self.private {
            Some(map) => map.all(self.index(i), self.index(i) + n, true),
            None => self.kvm.range_is_private(self.gfn + i, self.gfn + i + n),
        }
    }

    /// Fills `folio`, which starts at the `i`th page, with its pages' initial contents: hands
    /// each page to the populate callback (which copies them in and, on SEV-SNP and TDX,
    /// encrypts them) and marks the folio uptodate. Returns the number of pages filled, the
    /// folio's. `EEXIST` if it is uptodate already (before or, a racing fault, after), `EINVAL`
    /// if its pages are not all inside the call and private, `EHWPOISON` for a memory error in
    /// it; a callback's error is returned as is, and the folio stays not uptodate.
    ///
    /// As in 6.12, the callbacks run with the folio unlocked (they copy from userspace, and
    /// must not hold up the guest's faults on other pages while they do), and referenced; the
    /// mapping's `invalidate_lock`, which the populate trampoline holds, keeps the folio in the
    /// file meanwhile. Page faults are off (the trampoline faulted the source in): a copy that
    /// faults fails with `EFAULT`, and the trampoline retries that page.
    pub fn fill(&self, i: u64, folio: LockedFolio) -> Result<u64> {
        let index = self.index(i);
        let span = check_folio(self.file, &folio, index)?;
        let nr = 1u64 << span.order();
        if span.index() != index || !self.is_private(i, nr) {
            return Err(EINVAL);
        }
        if folio.test_uptodate() {
            return Err(EEXIST);
        }
        if folio.contains_hwpoison() {
            return Err(EHWPOISON);
        }
        let pfn = folio.pfn();
        let folio = folio.unlock();
        for n in 0..nr {
            let src = if self.src != 0 {
                // A bad address is the callback's to refuse (`EFAULT`), as in C: no panic.
                self.src.wrapping_add(((i + n) << PAGE_SHIFT) as usize)
            } else {
                0
            };
            let Some(f) = self.f else { return Err(EINVAL) };
            // SAFETY: KVM gave us `f` and `opaque` together for the duration of the populate
            // call this object lives in; the VM is valid; the pfn is the page of the file at
            // the gfn, referenced (`folio`) and kept in the file by `invalidate_lock`.
            to_result(unsafe {
                f(
                    self.kvm.as_raw(),
                    self.gfn + i + n,
                    pfn + n,
                    src as _,
                    0,
                    self.opaque,
                )
            })?;
        }
        // Locked again to mark it; the same folio, unless a memory error split it meanwhile.
        let locked = self
            .file
            .inode()
            .mapping()
            .lock_folio(index)
            .ok_or(EHWPOISON)?;
        if !core::ptr::eq(locked.as_raw(), folio.as_raw()) || locked.order() != span.order() {
            return Err(EHWPOISON);
        }
        // A guest fault that raced with the callbacks zeroed and prepared it: theirs now.
        if locked.test_uptodate() {
            return Err(EEXIST);
        }
        locked.mark_uptodate()?;
        Ok(nr)
    }
}

/// A guest_memfd backend: the memory of [`GmemFile`]s.
///
/// Its tables live in a `static` ([`BackendTable`]), registered with [`Registration`].
#[vtable]
pub trait GmemBackend: Sized + 'static {
    /// The module the backend lives in.
    const OWNER: &'static ThisModule;

    /// The operations of its files' page caches, which [`GmemFile::create`] installs with the
    /// file's state as their private data, and release takes back.
    type Aops: AddressSpaceOperations<Private = Arc<GmemFile<Self>>>;

    /// The backend's table (`static TABLE: BackendTable<Self> = BackendTable::new();`).
    fn table() -> &'static BackendTable<Self>;

    /// `KVM_CREATE_GUEST_MEMFD`: checks `size`, creates the file with [`GmemFile::create`]
    /// (which checks `flags`) and returns its descriptor.
    fn create(kvm: &Kvm, size: u64, flags: u64) -> Result<u32>;

    /// The `GUEST_MEMFD_FLAG_*` the backend supports for `kvm` (`None`: for some VM), which
    /// `KVM_CAP_GUEST_MEMFD_FLAGS` reports while the backend is registered, less what KVM does
    /// not allow (`INIT_SHARED` on a VM with private memory). None by default.
    fn supported_flags(_kvm: Option<&Kvm>) -> u64 {
        0
    }

    /// A fault of the VMM's mapping of a shared file (`GUEST_MEMFD_FLAG_MMAP` and
    /// `GUEST_MEMFD_FLAG_INIT_SHARED`) at page `index`, inside the file: the locked folio that
    /// holds it, zeroed on first use, the one the guest gets. `SIGBUS` by default.
    fn fault_user(
        _gmem: &GmemFile<Self>,
        _file: &File,
        _index: u64,
    ) -> core::result::Result<LockedFolio, VmFault> {
        Err(VmFault::SigBus)
    }

    /// The folio holding page `index` (inside the file) for `write()`, locked, allocated with
    /// the file's policy if new, not initialised (the abstraction fills it). `EHWPOISON` if the
    /// page is poisoned. Without it, the backend's files do not take `GUEST_MEMFD_FLAG_WRITE`.
    fn write_folio(_gmem: &GmemFile<Self>, _file: &File, _index: u64) -> Result<LockedFolio> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `fallocate(2)` on the file.
    fn fallocate(gmem: &GmemFile<Self>, file: &File, mode: i32, offset: i64, len: i64) -> Result;

    /// The file is being released and bound to nothing any more; its page cache is emptied
    /// after this. Nothing by default.
    fn release(_gmem: &GmemFile<Self>, _inode: &Inode) {}

    /// The folio holding the faulting page, locked, with the order KVM may map it at (at most
    /// the folio's); KVM gets the page with a reference. The abstraction checked that the slot
    /// is bound to the page.
    fn get_pfn(gmem: &GmemFile<Self>, fault: &GmemFault<'_>) -> Result<(LockedFolio, u32)>;

    /// `kvm_gmem_populate()`: calls [`GmemPopulate::fill`] on folios in order, and returns the
    /// number done. `invalidate_lock` is held, the slot is bound at the first page, page faults
    /// are off, and the call never crosses a PMD-aligned block of the file: the trampoline
    /// splits `kvm_gmem_populate()` into such calls, and retries a page whose copy faulted.
    fn populate(gmem: &GmemFile<Self>, populate: &GmemPopulate<'_>) -> Result<u64>;
}

/// A backend's tables: KVM's `struct kvm_gmem_ops`, with the file operations of the backend's
/// files in it, in a `static` of the backend's module; KVM recognises the files by the address
/// of those file operations.
pub type BackendTable<T> = StaticTable<bindings::kvm_gmem_ops, T>;

impl<T: GmemBackend> BackendTable<T> {
    /// `T`'s table.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        let ops = bindings::kvm_gmem_ops {
            owner: T::OWNER.as_ptr(),
            fops: FopsVtable::<GmemFops<T>>::VTABLE,
            supported_flags: Some(BackendVtable::<T>::supported_flags),
            create: Some(BackendVtable::<T>::create),
            bind: Some(BackendVtable::<T>::bind),
            unbind: Some(BackendVtable::<T>::unbind),
            get_pfn: Some(BackendVtable::<T>::get_pfn),
            populate: Some(BackendVtable::<T>::populate),
            range_has_attr: Some(BackendVtable::<T>::range_has_attr),
        };
        // SAFETY: `ops` holds `T`'s trampolines, `T::OWNER` and `T`'s file operations only.
        unsafe { Self::from_raw(ops) }
    }

    fn fops(&'static self) -> &'static FileOpsTable<GmemFops<T>> {
        // SAFETY: `fops` is `FopsVtable::<GmemFops<T>>::VTABLE` (`new`).
        unsafe { FileOpsTable::from_raw_ref(&self.as_raw().fops) }
    }
}

struct BackendVtable<T: GmemBackend>(PhantomData<T>);

impl<T: GmemBackend> BackendVtable<T> {
    /// The data of `file`.
    ///
    /// # Safety
    ///
    /// `file` has `T`'s file operations (KVM checked `f_op` against `T`'s table) and is
    /// referenced for `'a`.
    unsafe fn data<'a>(file: &'a File) -> ArcBorrow<'a, GmemFile<T>> {
        // SAFETY: Files with `T`'s file operations are made by `GmemFile::<T>::create`, which
        // stores an `Arc<GmemFile<T>>` from `into_foreign`; it is given back in release only,
        // which cannot begin while a reference is held.
        unsafe { <Arc<GmemFile<T>> as ForeignOwnable>::borrow(file.private_data()) }
    }

    /// # Safety
    ///
    /// Called by KVM with NULL or a VM it holds a reference on, for the call.
    unsafe extern "C" fn supported_flags(kvm: *mut bindings::kvm) -> u64 {
        // SAFETY: Per the function's safety requirement.
        let kvm = (!kvm.is_null()).then(|| unsafe { Kvm::from_raw(kvm) });
        allowed_flags::<T>(kvm)
    }

    /// # Safety
    ///
    /// Called by KVM with a VM it holds a reference on, for the call.
    unsafe extern "C" fn create(kvm: *mut bindings::kvm, size: u64, flags: u64) -> i32 {
        // SAFETY: Per the function's safety requirement.
        let kvm = unsafe { Kvm::from_raw(kvm) };
        from_result(|| Ok(T::create(kvm, size, flags)? as i32))
    }

    /// # Safety
    ///
    /// Called by KVM under `slots_lock` with a referenced VM, a new memslot that KVM keeps
    /// allocated until `unbind` (or frees without one if this fails), and a referenced file
    /// with `T`'s file operations.
    unsafe extern "C" fn bind(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        file: *mut bindings::file,
        offset: u64,
    ) -> i32 {
        from_result(|| {
            // SAFETY: Per the function's safety requirement.
            let (kvm, file) = unsafe { (Kvm::from_raw(kvm), File::from_raw_file(file)) };
            if slot.is_null() {
                return Err(EINVAL);
            }
            // SAFETY: Per the function's safety requirement, the slot is allocated until
            // unbind (the binding's lifetime, which `GmemFile` keeps).
            let slot = unsafe { MemorySlot::from_raw(slot) };
            // SAFETY: Per the function's safety requirement.
            let gmem = unsafe { Self::data(file) };
            gmem.bind(kvm, slot, file, offset)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by KVM with a slot that `bind` bound, before KVM frees it: under `slots_lock`, or
    /// from `kvm_destroy_vm()`, which runs only once every file of the VM is gone (each holds a
    /// VM reference), so that the slot's file is NULL.
    unsafe extern "C" fn unbind(slot: *mut bindings::kvm_memory_slot) {
        // SAFETY: Per the function's safety requirement.
        let slot = unsafe { MemorySlot::from_raw(slot) };
        // SAFETY: A non-NULL file is a file of `T`'s that `bind` gave the slot, and its release
        // has not cleared the slot: release clears it under `slots_lock`, which our caller
        // holds, before `FileOperations::release` returns and the data is given back (and
        // the file is freed after that).
        let gmem = unsafe {
            let file = bindings::kvm_gmem_slot_file(slot.as_raw());
            if file.is_null() {
                // Its release has dropped the binding and zapped it.
                return;
            }
            <Arc<GmemFile<T>> as ForeignOwnable>::borrow((*file).private_data)
        };
        gmem.unbind(slot);
    }

    /// # Safety
    ///
    /// Called by KVM with a referenced VM and a slot bound by `bind`, valid for the call;
    /// `pfn` is valid for writes, `max_order` NULL or valid for writes.
    unsafe extern "C" fn get_pfn(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        gfn: u64,
        pfn: *mut u64,
        max_order: *mut i32,
    ) -> i32 {
        // SAFETY: Per the function's safety requirement.
        let (kvm, slot) = unsafe { (Kvm::from_raw(kvm), MemorySlot::from_raw(slot)) };
        from_result(|| {
            // The file comes from the slot, so the slot is bound to it: no lock is shared
            // with punch-hole or conversions on the way to the folio.
            let (file, index) = slot.get_file_index(gfn)?;
            // SAFETY: A slot's file is one that `bind` gave it, a file of `T`'s; we hold a
            // reference.
            let gmem = unsafe { Self::data(&file) };
            let fault = GmemFault {
                kvm,
                file: &file,
                gfn,
                index,
            };
            let (folio, mut order) = T::get_pfn(&gmem, &fault)?;
            let span = check_folio(&file, &folio, index)?;
            // A memory error arrives without the folio lock: whatever the backend saw, a
            // poisoned page is refused, and a folio with one is not mapped whole.
            if folio.page_hwpoison(index) {
                return Err(EHWPOISON);
            }
            if order != 0 && folio.contains_hwpoison() {
                order = 0;
            }
            // The `1 << order` pages around the gfn that KVM may map with one entry must be
            // pages of the folio, at the same offsets in the file as in the slot (for order 0,
            // the page `check_folio` found it holds).
            let nr = 1u64 << order.min(span.order());
            let first = index & !(nr - 1);
            if order != 0
                && (order > span.order()
                    || first < span.index()
                    || first + nr > span.index() + (1u64 << span.order())
                    || (gfn ^ index) & (nr - 1) != 0)
            {
                crate::pr_warn!("kvm: guest_memfd backend returned an order past its folio\n");
                return Err(EFAULT);
            }
            // One entry maps pages of one attribute only: a conversion of any of them zaps it
            // (its invalidation is rounded out to the largest folio).
            if let Some(map) = &gmem.private {
                if order != 0 && !map.same(first, first + nr) {
                    order = 0;
                }
            }
            let p = folio.into_page_pfn(index)?;
            // SAFETY: Per the function's safety requirement; KVM now owns the page reference.
            unsafe {
                *pfn = p;
                if !max_order.is_null() {
                    *max_order = order as i32;
                }
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by KVM with a slot bound by `bind`, valid for the call (under `kvm->srcu` or
    /// `slots_lock`); may be called in atomic context.
    unsafe extern "C" fn range_has_attr(
        slot: *mut bindings::kvm_memory_slot,
        start: u64,
        end: u64,
        private: bool,
    ) -> bool {
        // SAFETY: Per the function's safety requirement.
        let slot = unsafe { MemorySlot::from_raw(slot) };
        let slot_end = slot.base_gfn() + slot.npages();
        if start < slot.base_gfn() || end <= start || end > slot_end {
            return false;
        }
        // A closed file's pages are neither: the fault that asks fails on the file. The slot
        // maps the rest of the range to the pages that follow in the file.
        let Ok((file, index)) = slot.get_file_index(start) else {
            return false;
        };
        // SAFETY: A slot's file is one that `bind` gave it, a file of `T`'s; we hold a
        // reference.
        let gmem = unsafe { Self::data(&file) };
        gmem.all(index, index + (end - start), private)
    }

    /// # Safety
    ///
    /// Called by KVM with a referenced VM and a slot bound by `bind` that holds `gfn`, valid
    /// for the call; `f` and `opaque` are KVM's callback and its argument, valid for the call.
    unsafe extern "C" fn populate(
        kvm: *mut bindings::kvm,
        slot: *mut bindings::kvm_memory_slot,
        gfn: u64,
        src: *mut core::ffi::c_void,
        npages: crate::ffi::c_long,
        f: bindings::kvm_gmem_populate_fn,
        opaque: *mut core::ffi::c_void,
    ) -> crate::ffi::c_long {
        // SAFETY: Per the function's safety requirement.
        let (kvm, slot) = unsafe { (Kvm::from_raw(kvm), MemorySlot::from_raw(slot)) };
        from_result(|| {
            if f.is_none() {
                return Err(EINVAL);
            }
            let npages = u64::try_from(npages).map_err(|_| EINVAL)?;
            let offset = gfn.checked_sub(slot.base_gfn()).ok_or(EINVAL)?;
            if offset >= slot.npages() {
                return Err(EINVAL);
            }
            let file = slot.get_file().ok_or(EFAULT)?;
            // The callbacks write through the direct map with the folio unlocked, where a
            // racing fault could take it out; populate serves VM types (SNP, TDX) that never
            // have such files. As C.
            if file.inode().mapping().no_direct_map() {
                return Err(EINVAL);
            }
            // SAFETY: As in `get_pfn`.
            let gmem = unsafe { Self::data(&file) };
            let npages = npages.min(slot.npages() - offset);
            let pmd_pages = 1u64 << crate::mm::PMD_ORDER;
            let (mut done, mut faults) = (0u64, 0u32);
            // A PMD's pages of the file at a time, so that a huge folio is filled in one step.
            // The callbacks copy from userspace under `invalidate_lock`, which the VMM's faults
            // may take under the mmap lock: the source is faulted in first, and copied with page
            // faults off; a copy that still faults (the page went away meanwhile) is retried
            // while the page can be faulted in, a few times.
            while done < npages {
                let first = gfn + done;
                let len = (npages - done).min(pmd_pages - slot.index_of(first) % pmd_pages);
                let chunk_src = if src.is_null() {
                    0
                } else {
                    (src as UserPtr).wrapping_add((done << PAGE_SHIFT) as usize)
                };
                if chunk_src != 0 {
                    let bytes = (len << PAGE_SHIFT) as usize;
                    // SAFETY: Reads a user range, or stops; the copy reports what it could not.
                    let _ = unsafe { bindings::fault_in_readable(chunk_src as _, bytes) };
                    // SEV-SNP's callback writes the CPUID page back to its source: writable
                    // too, where it can be (no write happens; a read-only source stays so).
                    if kvm.prepares_memory() {
                        // SAFETY: As above.
                        let _ = unsafe { bindings::fault_in_safe_writeable(chunk_src as _, bytes) };
                    }
                }
                let step = {
                    let _inval = file.inode().mapping().invalidate_lock();
                    // As C: the slot must be the one bound there (bindings do not change under
                    // the lock).
                    if !gmem.is_bound(slot, slot.index_of(first)) {
                        Err(EIO)
                    } else {
                        let populate = GmemPopulate {
                            kvm,
                            slot,
                            file: &file,
                            private: gmem.private.as_ref(),
                            gfn: first,
                            npages: len,
                            src: chunk_src,
                            f,
                            opaque,
                        };
                        let _no_faults = NoPageFaults::new();
                        T::populate(&gmem, &populate)
                    }
                };
                match step {
                    Ok(n) if n > 0 => (done, faults) = (done + n, 0),
                    Err(e) if e == EFAULT && chunk_src != 0 && faults < 8 => faults += 1,
                    Ok(_) => break,
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(done as crate::ffi::c_long)
        })
    }
}

/// Page faults off on this CPU's task while it lives: a user copy fails rather than fault.
#[must_use]
struct NoPageFaults(crate::types::NotThreadSafe);

impl NoPageFaults {
    fn new() -> Self {
        // SAFETY: Paired with the enable in `drop`, on this task (the guard is not `Send`).
        unsafe { bindings::pagefault_disable() };
        Self(crate::types::NotThreadSafe)
    }
}

impl Drop for NoPageFaults {
    fn drop(&mut self) {
        // SAFETY: Disabled in `new`, on this task.
        unsafe { bindings::pagefault_enable() };
    }
}

/// A registered backend; unregistered on drop.
///
/// # Invariants
///
/// `table` is registered with KVM.
pub struct Registration<T: GmemBackend> {
    table: &'static BackendTable<T>,
}

impl<T: GmemBackend> Registration<T> {
    /// Registers `T`: from now on, new guest_memfds are `T`'s. `EBUSY` if another backend is
    /// registered.
    pub fn new() -> Result<Self> {
        let table = T::table();
        // SAFETY: The table is `'static`; bindings that use it after unregistration hold
        // references on its module, which keeps it.
        to_result(unsafe { bindings::kvm_gmem_register_ops(table.as_raw()) })?;
        // INVARIANT: Registered just now.
        Ok(Self { table })
    }
}

impl<T: GmemBackend> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `table` is registered (type invariant): the very pointer `register` passed.
        // After this KVM no longer hands it out.
        unsafe { bindings::kvm_gmem_unregister_ops(self.table.as_raw()) };
    }
}
