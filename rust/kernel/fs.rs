// SPDX-License-Identifier: GPL-2.0

//! Files, and files backed by an anonymous inode.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/file.h`](srctree/include/linux/file.h),
//! [`include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h).

pub mod anon_file;
pub mod file;
pub mod kiocb;

pub use file::{File, FileDescriptorReservation, Inode};
pub use kiocb::Kiocb;

/// `fallocate(2)` modes.
pub mod falloc {
    /// Do not change the file size.
    pub const KEEP_SIZE: u32 = crate::bindings::FALLOC_FL_KEEP_SIZE;
    /// Deallocate the range (with [`KEEP_SIZE`]).
    pub const PUNCH_HOLE: u32 = crate::bindings::FALLOC_FL_PUNCH_HOLE;
}
