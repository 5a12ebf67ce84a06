// SPDX-License-Identifier: GPL-2.0

//! `struct file`, `struct inode` and file descriptor reservations.

use crate::{
    bindings,
    error::{to_result, Result},
    mm::filemap::AddressSpace,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr::NonNull;

/// A reference-counted `struct file`.
///
/// # Invariants
///
/// The file is valid while a reference is held: `ARef<File>` owns one, `&File` borrows one that
/// the caller holds.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

// SAFETY: `struct file` is refcounted with atomic operations and may be used and released from
// any thread; the fields this type reads are immutable or read with the appropriate accessors.
unsafe impl Send for File {}
// SAFETY: See above; shared references only allow thread-safe operations.
unsafe impl Sync for File {}

// SAFETY: `get_file` and `fput` increment and decrement the file's refcount, and the file stays
// alive until the count reaches zero.
unsafe impl AlwaysRefCounted for File {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means the refcount is non-zero.
        unsafe { bindings::get_file(self.as_ptr()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference, which it gives up here.
        unsafe { bindings::fput(obj.cast().as_ptr()) }
    }
}

impl File {
    /// Borrows a `struct file`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a file on which the caller holds a reference for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw_file<'a>(ptr: *const bindings::file) -> &'a File {
        // SAFETY: `File` is `repr(transparent)` over the C struct, and the caller guarantees the
        // pointer is valid for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Takes over a reference the caller owns on a `struct file`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid file with a reference that the caller transfers to the result.
    #[inline]
    pub unsafe fn from_raw_owned(ptr: NonNull<bindings::file>) -> ARef<File> {
        // SAFETY: The caller transfers its reference.
        unsafe { ARef::from_raw(ptr.cast()) }
    }

    /// The raw `struct file` (mainline's name).
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// The file's inode.
    #[inline]
    pub fn inode(&self) -> &Inode {
        // SAFETY: A file holds its inode alive for as long as the file lives, and `f_inode` is
        // set before the file is visible and never changes (`file_inode()` reads it, but is a
        // helper call from Rust).
        unsafe { Inode::from_raw((*self.as_ptr()).f_inode) }
    }

    /// `file->private_data`.
    #[inline]
    pub fn private_data(&self) -> *mut core::ffi::c_void {
        // SAFETY: The file is valid. Only the pointer is read; the callers dereference it
        // only for files whose operations they own, and those never rewrite it.
        unsafe { (*self.as_ptr()).private_data }
    }

    /// Updates the file's timestamps after a change to it, as `file_modified()` does.
    #[inline]
    pub fn modified(&self) -> Result {
        // SAFETY: The file is valid.
        to_result(unsafe { bindings::file_modified(self.as_ptr()) })
    }
}

/// A `struct inode`.
///
/// # Invariants
///
/// The inode is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct Inode(Opaque<bindings::inode>);

// SAFETY: Inodes are shared kernel objects; this type only allows thread-safe operations on them.
unsafe impl Sync for Inode {}
// SAFETY: See above.
unsafe impl Send for Inode {}

impl Inode {
    /// Borrows a `struct inode`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to an inode that stays valid for the whole of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::inode) -> &'a Inode {
        // SAFETY: `Inode` is `repr(transparent)` and the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct inode`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// The inode's size in bytes (`i_size_read`).
    #[inline]
    pub fn size(&self) -> i64 {
        // On 64-bit, `i_size_read()` is an acquire load, which pairs with `i_size_write()`'s
        // release: read here, as C inlines it, rather than by a call (host faults read it).
        #[cfg(CONFIG_64BIT)]
        // SAFETY: The inode is valid and `i_size` aligned: this is the load `i_size_read()`
        // does on 64-bit, and races with a writer only as C's does.
        return unsafe {
            core::sync::atomic::AtomicI64::from_ptr(core::ptr::addr_of_mut!(
                (*self.as_raw()).i_size
            ))
            .load(core::sync::atomic::Ordering::Acquire)
        };
        #[cfg(not(CONFIG_64BIT))]
        // SAFETY: The inode is valid.
        return unsafe { bindings::i_size_read(self.as_raw()) };
    }

    /// The page cache of this inode (`i_mapping`).
    #[inline]
    pub fn mapping(&self) -> &AddressSpace {
        // SAFETY: `i_mapping` is set at inode creation and lives as long as the inode.
        unsafe { AddressSpace::from_raw((*self.as_raw()).i_mapping) }
    }
}

/// A reserved file descriptor, not yet visible to userspace.
///
/// Dropping it releases the number; [`FileDescriptorReservation::fd_install`] publishes a file.
///
/// # Invariants
///
/// `fd` was returned by `get_unused_fd_flags` and has been neither installed nor put.
#[must_use = "dropping the reservation releases the number"]
pub struct FileDescriptorReservation {
    fd: u32,
    _not_send: crate::types::NotThreadSafe,
}

impl FileDescriptorReservation {
    /// Reserves a descriptor with the given `O_*` flags.
    #[inline]
    pub fn get_unused_fd_flags(flags: u32) -> Result<Self> {
        // SAFETY: Any flags are accepted; errors are returned as negative values.
        let fd = unsafe { bindings::get_unused_fd_flags(flags) };
        to_result(fd)?;
        // INVARIANT: `fd` was just reserved.
        Ok(Self {
            fd: fd as u32,
            _not_send: crate::types::NotThreadSafe,
        })
    }

    /// The reserved number.
    #[inline]
    pub fn reserved_fd(&self) -> u32 {
        self.fd
    }

    /// Installs `file` at the reserved number, giving the file reference to the fd table.
    #[inline]
    pub fn fd_install(self, file: ARef<File>) {
        let raw = ARef::into_raw(file);
        // SAFETY: `fd` is reserved and not installed (type invariant); the reference on the file
        // is transferred to the descriptor table.
        unsafe { bindings::fd_install(self.fd, raw.cast().as_ptr()) };
        core::mem::forget(self);
    }
}

impl Drop for FileDescriptorReservation {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `fd` is reserved and not installed (type invariant).
        unsafe { bindings::put_unused_fd(self.fd) };
    }
}

/// `open(2)` flags (where mainline has them: `fs::file::flags`).
pub mod flags {
    /// Open for reading and writing.
    pub const O_RDWR: u32 = crate::bindings::O_RDWR;
}
