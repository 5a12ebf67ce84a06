// expect: ok
//! The control: what a backend may do, written the way the failing cases
//! below try to misuse it, builds.
use kernel::{
    fs::File,
    kvm::{GmemBackend, GmemFile},
    memfile::Node,
    mm::folio::LockedFolio,
};

#[allow(dead_code)]
fn allowed<T: GmemBackend>(gmem: &GmemFile<T>, file: &File, folio: &LockedFolio, node: &Node) {
    let _ = folio.init_once(|_| Ok(()));
    let _ = gmem.punch_hole(file, 0, 1);
    if let Ok(cache) = gmem.page_cache(file) {
        let _guard = cache.invalidate_lock_shared();
    }
    node.invalidate(0, 1, |_inv| ());
}
