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
    types::{ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

/// A mapping of one of `F`'s files that its `mmap` is setting up: nobody else sees it yet,
/// and what it is given here ([`VmaNew::set_vm_ops`]) serves all its faults.
///
/// # Invariants
///
/// The VMA is valid, being set up by `mmap` of a file created by
/// [`NewFile::create`](crate::fs::anon_file::NewFile::create) for `F`, and its file stays that
/// file for its life.
#[repr(transparent)]
pub struct VmaNew<F: FileOperations>(Opaque<bindings::vm_area_struct>, PhantomData<F>);

impl<F: FileOperations> VmaNew<F> {
    /// Borrows the VMA `mmap` was called with.
    ///
    /// # Safety
    ///
    /// `ptr` is a VMA being set up by `f_op->mmap` of a file created for `F`, for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `repr(transparent)`; the caller guarantees validity and the invariant.
        unsafe { &*ptr.cast() }
    }

    /// Its `VM_*` flags.
    #[inline]
    pub fn flags(&self) -> usize {
        // SAFETY: The VMA is valid; `mmap` runs under the mmap lock, which `vm_flags` needs.
        unsafe { (*self.0.get()).__bindgen_anon_2.vm_flags }
    }

    /// Whether writes reach the file and every mapper sees them: `MAP_SHARED` (`VM_SHARED`
    /// and `VM_MAYSHARE`), not a copy-on-write mapping.
    #[inline]
    pub fn is_shared(&self) -> bool {
        let shared = (bindings::VM_SHARED | bindings::VM_MAYSHARE) as usize;
        self.flags() & shared == shared
    }
}

impl<F: VmOperations> VmaNew<F> {
    /// Serves the mapping's faults with `F`'s [`VmOperations`].
    #[inline]
    pub fn set_vm_ops(&self) {
        // SAFETY: The VMA is being set up by `mmap` and seen by nobody else; the table is a
        // `'static` constant, and its functions live in `F`'s module, which the mapping pins
        // through its file (`F::OWNER`).
        unsafe { (*self.0.get()).vm_ops = VmOpsVtable::<F>::build() };
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

/// The faults of mappings of `Self`'s files, set up by [`VmaNew::set_vm_ops`].
pub trait VmOperations: FileOperations {
    /// A fault of page `pgoff` of `file`: the locked folio of `file`'s page cache that holds
    /// it, which the MM maps and unlocks, or why there is none.
    fn fault(
        data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        file: &File,
        pgoff: u64,
    ) -> core::result::Result<LockedFolio, VmFault>;

    /// The NUMA policy of the file's pages, kept with the file: `mbind()` on a mapping sets it
    /// for the pages mapped there, `get_mempolicy()` reads it back, and it outlives the
    /// mapping. `None` (the default): a mapping keeps a policy of its own, as most files' do.
    fn shared_policy<'a>(
        _data: &'a <Self::Data as ForeignOwnable>::Borrowed<'_>,
    ) -> Option<&'a SharedPolicy> {
        None
    }
}

struct VmOpsVtable<F: VmOperations>(PhantomData<F>);

impl<F: VmOperations> VmOpsVtable<F> {
    /// The file data of the mapping `vma`.
    ///
    /// # Safety
    ///
    /// `vma` is a mapping that [`VmaNew::set_vm_ops`] set up, valid for `'a`.
    unsafe fn data<'a>(
        vma: *mut bindings::vm_area_struct,
    ) -> <F::Data as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: The VMA's file is one of `F`'s (`VmaNew` invariant), referenced by the VMA;
        // its `private_data` came from `F::Data::into_foreign` (`NewFile::create`) and is
        // given back only in release, which cannot run while the mapping holds the file.
        unsafe { F::Data::borrow(File::from_raw_file((*vma).vm_file).private_data()) }
    }

    /// # Safety
    ///
    /// Called by the MM with a fault of a mapping that [`VmaNew::set_vm_ops`] set up.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: The MM passes a valid fault of a valid VMA, whose file is one of `F`'s
        // (`VmaNew` invariant) and holds a reference on it while the VMA lives.
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
        let folio = match F::fault(data, file, pgoff) {
            Ok(folio) => folio,
            Err(e) => return e.code(),
        };
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
    /// Called by the MM, under the mmap lock, with a mapping that [`VmaNew::set_vm_ops`] set
    /// up and a valid policy or NULL.
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
    /// Called by the MM with a mapping that [`VmaNew::set_vm_ops`] set up, valid for the call,
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

    const fn build() -> &'static bindings::vm_operations_struct {
        &Self::VTABLE
    }
}
