// expect: mismatched types|expected `StaticTable<vm_operations_struct, Mine>`
//! A file's faults are served by its own type's table: `VM_OPS` cannot name
//! another type's, whose fault handler would read the file's data as its own.
use kernel::{
    fs::{
        anon_file::{FileOperations, FileOpsTable},
        File, Inode,
    },
    mm::{
        folio::LockedFolio,
        virt::{VmFault, VmOperations, VmOpsTable},
    },
    prelude::*,
};

// SAFETY: A NULL owner stands for built-in code, which is never unloaded.
static OWNER: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };

struct Other;
struct Mine;

#[vtable]
impl FileOperations for Other {
    type Data = KBox<u64>;
    const OWNER: &'static ThisModule = &OWNER;
    fn release(_data: &u64, _inode: &Inode) {}
}

impl VmOperations for Other {
    fn fault(_: &u64, _: &File, _: u64) -> core::result::Result<LockedFolio, VmFault> {
        Err(VmFault::SigBus)
    }
}

#[vtable]
impl FileOperations for Mine {
    type Data = KBox<u32>;
    const OWNER: &'static ThisModule = &OWNER;
    const VM_OPS: Option<&'static VmOpsTable<Self>> = Some(VmOpsTable::<Other>::build());
    fn release(_data: &u32, _inode: &Inode) {}
}

#[allow(dead_code)]
static FOPS: FileOpsTable<Mine> = FileOpsTable::new();
