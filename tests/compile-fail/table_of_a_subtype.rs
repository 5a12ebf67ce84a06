// expect: one type is more general than the other|mismatched types
//! A table is its own type's only: `W<for<'a> fn(&'a ())>` is a subtype of
//! `W<fn(&'static ())>`, and were tables covariant, one implementer's vm ops
//! (reading its file data as `u64`) would serve the other's files (`u32`).
use core::marker::PhantomData;
use kernel::{
    fs::{anon_file::FileOperations, File, Inode},
    mm::{
        folio::LockedFolio,
        virt::{VmFault, VmOperations, VmOpsTable},
    },
    prelude::*,
};

// SAFETY: A NULL owner stands for built-in code, which is never unloaded.
static OWNER: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };

struct W<X>(PhantomData<X>);

type Sub = W<for<'a> fn(&'a ())>;
type Super = W<fn(&'static ())>;

#[vtable]
impl FileOperations for Sub {
    type Data = KBox<u64>;
    const OWNER: &'static ThisModule = &OWNER;
    const VM_OPS: Option<&'static VmOpsTable<Self>> = Some(VmOpsTable::build());
    fn release(_data: &u64, _inode: &Inode) {}
    fn mmap(_data: &u64, _file: &File, _vma: &kernel::mm::virt::VmaNew) -> Result {
        Ok(())
    }
}

impl VmOperations for Sub {
    fn fault(_: &u64, _: &File, _: u64) -> core::result::Result<LockedFolio, VmFault> {
        Err(VmFault::SigBus)
    }
}

#[vtable]
impl FileOperations for Super {
    type Data = KBox<u32>;
    const OWNER: &'static ThisModule = &OWNER;
    const VM_OPS: Option<&'static VmOpsTable<Self>> = Some(VmOpsTable::<Sub>::build());
    fn release(_data: &u32, _inode: &Inode) {}
    fn mmap(_data: &u32, _file: &File, _vma: &kernel::mm::virt::VmaNew) -> Result {
        Ok(())
    }
}
