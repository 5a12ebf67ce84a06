// SPDX-License-Identifier: GPL-2.0

//! The data of a read or a write: `struct iov_iter`.
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h).

use crate::{bindings, types::Opaque};
use core::marker::PhantomData;

/// The source of a write (an `iov_iter` with `ITER_SOURCE`): bytes to be copied from, most often
/// a user buffer, consumed as they are copied.
///
/// Only the abstractions that own the destination copy from it (a folio's pages may be out of
/// the direct map, and only those abstractions know how to reach them): its raw pointer is
/// crate-private. Not `Send` (an `iov_iter` of user memory is the calling task's).
///
/// # Invariants
///
/// `iov` is a valid `iov_iter` with `data_source` set, for `'data`, that only this value uses.
#[repr(transparent)]
pub struct IovIterSource<'data> {
    iov: Opaque<bindings::iov_iter>,
    _source: PhantomData<&'data [u8]>,
}

impl<'data> IovIterSource<'data> {
    /// Wraps the `iov_iter` at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to a valid `iov_iter` with `data_source` set, valid for `'data` and used by
    /// nothing else while the returned reference lives.
    pub unsafe fn from_raw<'iov>(ptr: *mut bindings::iov_iter) -> &'iov mut IovIterSource<'data> {
        // SAFETY: `IovIterSource` is a transparent `iov_iter`; the caller vouches for the rest.
        unsafe { &mut *ptr.cast() }
    }

    pub(crate) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        self.iov.get()
    }

    /// The bytes left to copy.
    pub fn len(&self) -> usize {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::iov_iter_count(self.iov.get()) }
    }

    /// Whether no byte is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Faults in the next `bytes` bytes of a user source (nothing to do for others), so that a
    /// copy with page faults disabled (under a folio lock) can take them; returns how many
    /// could not be: all of them means that the source is bad.
    pub fn fault_in_readable(&self, bytes: usize) -> usize {
        // SAFETY: The iterator is valid (type invariant); this only reads it.
        unsafe { bindings::fault_in_iov_iter_readable(self.iov.get(), bytes) }
    }
}
