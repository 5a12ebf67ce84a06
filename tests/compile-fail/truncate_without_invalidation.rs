// expect: method `lock_for_truncate` is private
//! A backend frees guest_memfd memory only through `GmemFile::punch_hole`,
//! which invalidates the range first: truncating its page cache directly
//! would free folios KVM still maps.
use kernel::{
    fs::File,
    kvm::{GmemBackend, GmemFile},
};

#[allow(dead_code)]
fn check<T: GmemBackend>(gmem: &GmemFile<T>, file: &File) {
    if let Ok(cache) = gmem.page_cache(file) {
        let _t = cache.lock_for_truncate();
    }
}
