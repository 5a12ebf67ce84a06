// SPDX-License-Identifier: GPL-2.0

//! C operations tables built for a Rust type, kept in `static`s.
//!
//! C code recognises some objects by the address of their operations table (a file by its
//! `f_op`, a guest_memfd backend by its `kvm_gmem_ops`, a memfile store by its table), and a
//! `static` has one address, which a constant does not: each use of a constant may have its
//! own copy. Every such table of this crate is a [`StaticTable`]; each kind has its own
//! constructor next to the trait it is built from (`AopsTable::new`, `FileOpsTable::new`,
//! `BackendTable::new`, ...), which is what makes it `T`'s. One kind needs no identity:
//! `VmOpsTable::build` gives a promoted constant (nothing compares `vm_ops` addresses).

use core::marker::PhantomData;

/// The C operations table `R` built for the Rust type `T`, to keep in a `static`:
/// `static TABLE: FileOpsTable<MyFile> = FileOpsTable::new();`.
///
/// `T` is invariant: were it covariant, a table of `W<for<'a> fn(&'a ())>` would also be one of
/// its supertype `W<fn(&'static ())>`, another implementer, with other data.
///
/// # Invariants
///
/// `R` holds pointers to functions and to static data only, has no interior mutability, and is
/// never written.
#[repr(transparent)]
pub struct StaticTable<R, T>(R, PhantomData<fn(T) -> T>);

// SAFETY: By the type invariant, threads that share the table share read-only pointers to code
// and to static data, which any thread may use.
unsafe impl<R, T> Sync for StaticTable<R, T> {}

impl<R, T> StaticTable<R, T> {
    /// Wraps `T`'s table `raw`.
    ///
    /// # Safety
    ///
    /// `raw` holds pointers to functions and to static data only and no interior mutability,
    /// and is the table for `T` that the code reading this kind of table expects (its
    /// trampolines are `T`'s).
    pub(crate) const unsafe fn from_raw(raw: R) -> Self {
        // INVARIANT: The caller guarantees what `raw` holds; nothing here writes it.
        Self(raw, PhantomData)
    }

    /// Views `T`'s table kept inside another table (a backend's file operations inside its
    /// `kvm_gmem_ops`).
    ///
    /// # Safety
    ///
    /// As for [`StaticTable::from_raw`], for `*raw`.
    pub(crate) const unsafe fn from_raw_ref(raw: &'static R) -> &'static Self {
        // SAFETY: `repr(transparent)` over `R`; the caller guarantees the invariant.
        unsafe { &*core::ptr::from_ref(raw).cast::<Self>() }
    }

    /// The C table, whose address is its identity.
    #[inline]
    pub(crate) const fn as_raw(&'static self) -> &'static R {
        &self.0
    }
}
