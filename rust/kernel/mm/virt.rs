// SPDX-License-Identifier: GPL-2.0

//! Mappings of a file: the VMA its `mmap` sets up, and the page faults of that mapping.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/mm_types.h`](srctree/include/linux/mm_types.h).

use crate::{
    bindings,
    fs::{anon_file::FileOperations, File},
    mm::{folio::LockedFolio, mempolicy::SharedPolicy},
    prelude::*,
    static_table::StaticTable,
    types::{ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

pub use bindings::vm_flags_t;

/// `VM_*` flags of a VMA, as mainline names them.
pub mod flags {
    use super::vm_flags_t;
    use crate::bindings;

    /// Writes reach the file (`MAP_SHARED`).
    pub const SHARED: vm_flags_t = bindings::VM_SHARED as vm_flags_t;
    /// The mapping was made `MAP_SHARED`, even if it may no longer write.
    pub const MAYSHARE: vm_flags_t = bindings::VM_MAYSHARE as vm_flags_t;
}

/// A VMA, with the mmap lock (or the VMA's own lock) held: its fields may be read.
///
/// # Invariants
///
/// The VMA is valid, and the mmap lock or the VMA's read lock is held, while the reference is.
#[repr(transparent)]
pub struct VmaRef {
    vma: Opaque<bindings::vm_area_struct>,
}

impl VmaRef {
    /// Borrows the VMA at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a valid VMA for `'a`, and the caller holds the mmap lock or the VMA's read lock
    /// for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `repr(transparent)`; the caller guarantees the invariant.
        unsafe { &*ptr.cast() }
    }

    /// The raw VMA.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::vm_area_struct {
        self.vma.get()
    }

    /// Its `VM_*` flags.
    #[inline]
    pub fn flags(&self) -> vm_flags_t {
        // SAFETY: The VMA is valid, and the lock held (type invariant) keeps `vm_flags` stable.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.vm_flags }
    }

    /// Whether writes reach the file and every mapper sees them: `MAP_SHARED` ([`flags::SHARED`]
    /// and [`flags::MAYSHARE`]), not a copy-on-write mapping.
    #[inline]
    pub fn is_shared(&self) -> bool {
        let shared = flags::SHARED | flags::MAYSHARE;
        self.flags() & shared == shared
    }
}

/// A VMA that `mmap` is setting up: nobody else sees it yet. The file's
/// [`FileOperations::VM_OPS`] serve its faults once `mmap` succeeds.
///
/// # Invariants
///
/// The VMA is being set up by `f_op->mmap`, under the mmap lock.
#[repr(transparent)]
pub struct VmaNew {
    vma: VmaRef,
}

impl VmaNew {
    /// Borrows the VMA `mmap` was called with.
    ///
    /// # Safety
    ///
    /// `ptr` is a VMA being set up by `f_op->mmap`, for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `repr(transparent)` over `VmaRef`; `mmap` runs under the mmap lock.
        unsafe { &*ptr.cast() }
    }

    /// Serves the VMA's faults with `table`.
    ///
    /// # Safety
    ///
    /// The VMA's file is one of `F`'s, and `mmap` is about to succeed.
    pub(crate) unsafe fn set_vm_ops<F>(&self, table: &'static VmOpsTable<F>) {
        // SAFETY: The VMA is being set up by `mmap` and seen by nobody else; the table is
        // static, and its functions live in `F`'s module, which the mapping pins through its
        // file (`F::OWNER`), one of `F`'s (the caller guarantees it).
        unsafe { (*self.as_ptr()).vm_ops = table.as_raw() };
    }
}

impl core::ops::Deref for VmaNew {
    type Target = VmaRef;

    #[inline]
    fn deref(&self) -> &VmaRef {
        &self.vma
    }
}

/// Why a fault of a mapping gets no page: the `VM_FAULT_*` code the MM acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmFault {
    /// `SIGBUS` (`BUS_ADRERR`) to the faulting task: nothing may be mapped there.
    SigBus,
    /// The memory-error `SIGBUS` (`BUS_MCEERR_AR`): the page is poisoned.
    HwPoison,
    /// Out of memory: the OOM killer's business.
    Oom,
}

impl VmFault {
    fn code(self) -> bindings::vm_fault_t {
        (match self {
            VmFault::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
            VmFault::HwPoison => bindings::vm_fault_reason_VM_FAULT_HWPOISON,
            VmFault::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        }) as bindings::vm_fault_t
    }
}

impl From<Error> for VmFault {
    /// As C's `vmf_error()`: out of memory is `Oom`, a poisoned page `HwPoison`, anything
    /// else `SigBus`.
    fn from(e: Error) -> Self {
        if e == ENOMEM {
            VmFault::Oom
        } else if e == EHWPOISON {
            VmFault::HwPoison
        } else {
            VmFault::SigBus
        }
    }
}

/// What a fault handler found: the locked folio of the file's page cache that holds the
/// faulting page, and whether all of the folio's pages may be mapped now.
pub struct FaultFolio {
    folio: LockedFolio,
    whole: bool,
}

impl FaultFolio {
    /// The MM maps the faulting page of `folio` alone.
    #[inline]
    pub fn page(folio: LockedFolio) -> Self {
        Self {
            folio,
            whole: false,
        }
    }

    /// The MM may map every page of `folio` at once: with one PMD where the folio is
    /// PMD-sized and the VMA and its page table allow it, otherwise the faulting page alone.
    #[inline]
    pub fn whole(folio: LockedFolio) -> Self {
        Self { folio, whole: true }
    }
}

/// The faults of mappings of `Self`'s files, served through its [`VmOpsTable`] (see
/// [`FileOperations::VM_OPS`]).
pub trait VmOperations: FileOperations {
    /// A fault of page `pgoff` of `file`: the locked folio of `file`'s page cache that holds
    /// it, which the MM maps and unlocks, or why there is none.
    fn fault(
        data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        file: &File,
        pgoff: u64,
    ) -> core::result::Result<FaultFolio, VmFault>;

    /// The NUMA policy of the file's pages, kept with the file: `mbind()` on a mapping sets it
    /// for the pages mapped there, `get_mempolicy()` reads it back, and it outlives the
    /// mapping. `None` (the default): a mapping keeps a policy of its own, as most files' do.
    fn shared_policy<'a>(
        _data: &'a <Self::Data as ForeignOwnable>::Borrowed<'_>,
    ) -> Option<&'a SharedPolicy> {
        None
    }
}

/// The `vm_operations_struct` of mappings of `F`'s files.
pub type VmOpsTable<F> = StaticTable<bindings::vm_operations_struct, F>;

impl<F: VmOperations> VmOpsTable<F> {
    const TABLE: Self = {
        // SAFETY: `VTABLE` holds `F`'s trampolines only.
        unsafe { Self::from_raw(VmOpsVtable::<F>::VTABLE) }
    };

    /// `F`'s table, for [`FileOperations::VM_OPS`].
    pub const fn build() -> &'static Self {
        &Self::TABLE
    }
}

struct VmOpsVtable<F: VmOperations>(PhantomData<F>);

impl<F: VmOperations> VmOpsVtable<F> {
    /// The file data of the mapping `vma`.
    ///
    /// # Safety
    ///
    /// `vma` is a mapping that [`VmOpsTable`] serves, valid for `'a`.
    unsafe fn data<'a>(
        vma: *mut bindings::vm_area_struct,
    ) -> <F::Data as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: Only `F`'s mmap installs `F`'s table (`VmaNew::set_vm_ops`), so the VMA's
        // file is one of `F`'s, referenced by the VMA; its `private_data` came from
        // `F::Data::into_foreign` (`NewFile::create`) and is given back only in release,
        // which cannot run while the mapping holds the file.
        unsafe { F::Data::borrow(File::from_raw_file((*vma).vm_file).private_data()) }
    }

    /// # Safety
    ///
    /// Called by the MM with a fault of a mapping that [`VmOpsTable`] serves.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: The MM passes a valid fault of a valid VMA, whose file is one of `F`'s (as in
        // `data`) and holds a reference on it while the VMA lives.
        let (file, pgoff) = unsafe {
            let vmf = &*vmf;
            let vma = &*vmf.__bindgen_anon_1.vma;
            (
                File::from_raw_file(vma.vm_file),
                vmf.__bindgen_anon_1.pgoff as u64,
            )
        };
        // SAFETY: The fault's VMA is a mapping of ours, valid while the fault runs.
        let data = unsafe { Self::data((*vmf).__bindgen_anon_1.vma) };
        let FaultFolio { mut folio, whole } = match F::fault(data, file, pgoff) {
            Ok(found) => found,
            Err(e) => return e.code(),
        };
        if whole {
            let fallback = bindings::vm_fault_reason_VM_FAULT_FALLBACK as bindings::vm_fault_t;
            // SAFETY: `vmf` is the fault being handled, of a mapping of `file`, at `pgoff`.
            match unsafe { folio.map_pmd(vmf, file.inode().mapping(), pgoff) } {
                Ok(()) => return bindings::vm_fault_reason_VM_FAULT_NOPAGE as bindings::vm_fault_t,
                Err((back, ret)) if ret == fallback => folio = back,
                // Unlocked and put as it drops.
                Err((_, ret)) => return ret,
            }
        }
        // The page mapped must be the file's own at `pgoff`, or another file's memory would
        // reach this mapping.
        let Some(page) = folio.into_locked_page(file.inode().mapping(), pgoff) else {
            crate::pr_warn!("mm: a fault handler returned a folio of another page\n");
            return VmFault::SigBus.code();
        };
        // SAFETY: `vmf` is valid; the page is locked and referenced, as `VM_FAULT_LOCKED`
        // tells the MM, which unlocks it and takes the reference.
        unsafe { (*vmf).page = page };
        bindings::vm_fault_reason_VM_FAULT_LOCKED as bindings::vm_fault_t
    }

    /// `mbind()` of the range `vma` maps: `new` for the file's pages there (NULL: the default).
    ///
    /// # Safety
    ///
    /// Called by the MM, under the mmap lock, with a mapping that [`VmOpsTable`] serves and a
    /// valid policy or NULL.
    #[cfg(CONFIG_NUMA)]
    unsafe extern "C" fn set_policy(
        vma: *mut bindings::vm_area_struct,
        new: *mut bindings::mempolicy,
    ) -> core::ffi::c_int {
        // SAFETY: The caller passes a mapping of ours.
        let data = unsafe { Self::data(vma) };
        match F::shared_policy(&data) {
            // SAFETY: The policy and the VMA are valid, `new` valid or NULL; the shared policy
            // keeps copies of `new`, not `new` itself.
            Some(sp) => unsafe { bindings::shared_policy_set(sp.as_raw(), vma, new) },
            // The MM sets the mapping's own policy as well: nothing more to do.
            None => 0,
        }
    }

    /// The policy of the page at `addr` of `vma`, referenced if it is shared, or NULL for the
    /// task's.
    ///
    /// # Safety
    ///
    /// Called by the MM with a mapping that [`VmOpsTable`] serves, valid for the call,
    /// and an address inside it.
    #[cfg(CONFIG_NUMA)]
    unsafe extern "C" fn get_policy(
        vma: *mut bindings::vm_area_struct,
        addr: usize,
        _ilx: *mut usize,
    ) -> *mut bindings::mempolicy {
        // SAFETY: The caller passes a mapping of ours.
        let data = unsafe { Self::data(vma) };
        match F::shared_policy(&data) {
            // SAFETY: The policy and the VMA are valid, and `addr` is inside the VMA. NULL
            // where none was set: `get_mempolicy()` then reads `MPOL_DEFAULT`, as for shmem.
            Some(sp) => unsafe { bindings::shared_policy_lookup_vma(sp.as_raw(), vma, addr) },
            // What the MM reads when a mapping has no `get_policy`: its own.
            // SAFETY: The VMA is valid; the caller holds the mmap lock or the VMA's lock, and
            // the MM changes `vm_policy` only under both.
            None => unsafe { (*vma).vm_policy },
        }
    }

    const VTABLE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        #[cfg(CONFIG_NUMA)]
        set_policy: Some(Self::set_policy),
        #[cfg(CONFIG_NUMA)]
        get_policy: Some(Self::get_policy),
        // SAFETY: All-zero is a valid `vm_operations_struct`: every other slot is empty.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}
