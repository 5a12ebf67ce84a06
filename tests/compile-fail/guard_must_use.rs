// expect: unused `InvalidateSharedGuard` that must be used
//! A guard dropped at once locks nothing: `#[must_use]` says so (denied
//! here, as a warning is in the kernel's build).
#![deny(unused_must_use)]
use kernel::{
    fs::File,
    kvm::{GmemBackend, GmemFile},
};

#[allow(dead_code)]
fn check<T: GmemBackend>(gmem: &GmemFile<T>, file: &File) {
    if let Ok(cache) = gmem.page_cache(file) {
        cache.invalidate_lock_shared();
    }
}
