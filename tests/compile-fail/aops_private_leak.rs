// expect: the trait bound `Arc<u32>: Copy` is not satisfied|Copy` is not satisfied
//! Page-cache data that must be dropped is installed only by an abstraction
//! that takes it back at release: `NewFile::set_aops` takes `Copy` data, so
//! an `Arc` (which could pin a VM) cannot be left behind in a freed inode.
use kernel::{
    fs::anon_file::{FileOperations, NewFile},
    mm::filemap::{AddressSpaceOperations, AopsTable},
    sync::Arc,
};

struct Leaky;

static AOPS: AopsTable<Leaky> = AopsTable::new();

#[kernel::prelude::vtable]
impl AddressSpaceOperations for Leaky {
    type Private = Arc<u32>;

    fn table() -> &'static AopsTable<Self> {
        &AOPS
    }
}

#[allow(dead_code)]
fn check<T: FileOperations>(file: &mut NewFile<T>, data: Arc<u32>) {
    let _ = file.set_aops::<Leaky>(data);
}
