// SPDX-License-Identifier: GPL-2.0

//! NUMA memory policies of a file's pages.
//!
//! C header: [`include/linux/mempolicy.h`](srctree/include/linux/mempolicy.h).

use crate::{bindings, prelude::*, types::Opaque};

/// The NUMA policy of a file's pages, by page range, as shmem keeps for its inodes: `mbind()` on
/// a mapping of the file sets it ([`VmOperations::shared_policy`]), `get_mempolicy()` reads it,
/// and the file's page cache allocates with it ([`PageCache::grab_folio`]).
///
/// Empty, and no allocation, until a policy is set; freed with its owner.
///
/// [`VmOperations::shared_policy`]: crate::mm::virt::VmOperations::shared_policy
/// [`PageCache::grab_folio`]: crate::mm::filemap::PageCache::grab_folio
///
/// # Invariants
///
/// `inner` was initialised by `mpol_shared_policy_init()` and is freed only on drop.
#[pin_data(PinnedDrop)]
pub struct SharedPolicy {
    #[pin]
    inner: Opaque<bindings::shared_policy>,
}

// SAFETY: A shared policy is not tied to a thread; its own lock serialises every access.
unsafe impl Send for SharedPolicy {}

// SAFETY: As above: `&SharedPolicy` gives only operations that take its lock.
unsafe impl Sync for SharedPolicy {}

impl SharedPolicy {
    /// An empty shared policy: every page follows the allocating task's policy.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ptr` points to room for a `shared_policy`, which this initialises; with
            // no mount policy to copy, it allocates nothing and cannot fail.
            inner <- Opaque::ffi_init(|ptr| unsafe { bindings::shared_policy_init(ptr) }),
        })
    }

    /// The raw `struct shared_policy`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::shared_policy {
        self.inner.get()
    }
}

#[pinned_drop]
impl PinnedDrop for SharedPolicy {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Initialised by `new` (type invariant); nothing can reach it any more.
        unsafe { bindings::shared_policy_free(self.inner.get()) };
    }
}
