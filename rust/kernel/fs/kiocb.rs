// SPDX-License-Identifier: GPL-2.0

//! I/O control blocks: `struct kiocb`.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).

use crate::{bindings, fs::File};
use core::{marker::PhantomData, ptr::NonNull};

/// A read or a write in progress on a file: which file, and at which position.
///
/// # Invariants
///
/// `inner` is a valid `kiocb` for `'a`, whose file is referenced for `'a`; this value has
/// exclusive access to its position.
pub struct Kiocb<'a> {
    inner: NonNull<bindings::kiocb>,
    _p: PhantomData<&'a mut bindings::kiocb>,
}

impl<'a> Kiocb<'a> {
    /// Wraps the `kiocb` at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to a valid `kiocb`, whose file is referenced, for `'a`; nothing else uses
    /// its position meanwhile (the VFS gives it to one file operation at a time).
    pub unsafe fn from_raw(ptr: *mut bindings::kiocb) -> Self {
        // INVARIANT: As the caller vouches; the VFS never passes a NULL `kiocb`.
        Self {
            // SAFETY: The caller passes a valid, so non-NULL, pointer.
            inner: unsafe { NonNull::new_unchecked(ptr) },
            _p: PhantomData,
        }
    }

    /// The file of the I/O.
    pub fn file(&self) -> &File {
        // SAFETY: The `kiocb` and its file reference are valid for `'a` (type invariant).
        unsafe { File::from_raw_file(self.inner.as_ref().ki_filp) }
    }

    /// The position in the file where the I/O starts.
    pub fn ki_pos(&self) -> i64 {
        // SAFETY: The `kiocb` is valid (type invariant).
        unsafe { self.inner.as_ref().ki_pos }
    }

    /// Whether the I/O appends (`O_APPEND`, `RWF_APPEND`): it starts at the end of the file,
    /// whatever [`Self::ki_pos`] says.
    pub fn is_append(&self) -> bool {
        // SAFETY: The `kiocb` is valid (type invariant).
        unsafe { self.inner.as_ref().ki_flags & bindings::IOCB_APPEND != 0 }
    }

    /// The position, to be advanced past what the I/O did.
    pub fn ki_pos_mut(&mut self) -> &mut i64 {
        // SAFETY: The `kiocb` is valid and its position is this value's alone (type invariant).
        unsafe { &mut self.inner.as_mut().ki_pos }
    }
}
