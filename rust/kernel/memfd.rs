// SPDX-License-Identifier: GPL-2.0

//! Providers of `memfd_create(MFD_INACCESSIBLE)` files.
//!
//! Such a file is a shmem file (it has shmem's page cache, seals and inode) whose file
//! operations are the provider's: each access first asks the provider, then goes on to shmem's
//! own operation. Its inode operations are this file's, built into the kernel, because an inode
//! can outlive every file of it (an `O_PATH` reference through `/proc/<pid>/fd`) and so the
//! provider's module: they hold the rules that need no file. The size is set once, from 0, to
//! whole pages. The inode cannot be opened again (`EPERM`): such a file would have none of the
//! provider's data. Its page cache is inaccessible (not migrated, never evicted) and allocated
//! without `__GFP_MOVABLE`; the folios handed out are dirty, so that nothing evicts them as
//! clean cache.
//!
//! C header: [`include/linux/memfd.h`](srctree/include/linux/memfd.h).

use crate::ffi::{c_char, c_int, c_long, c_uint, c_ulong};
use crate::{
    bindings,
    error::{code::*, from_err_ptr, from_result, to_result, Result},
    fs::{File, Inode},
    memfile::Invalidation,
    mm::folio::LockedFolio,
    prelude::*,
    static_table::StaticTable,
    str::CStr,
    sync::aref::ARef,
    types::ForeignOwnable,
    ThisModule,
};
use core::{
    marker::PhantomData,
    ptr::{self, null_mut, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};

/// shmem's file and inode operations, the same for every shmem file: recorded when a file is
/// created, before its operations are replaced, and immortal (shmem is built in).
static SHMEM_FOPS: AtomicPtr<bindings::file_operations> = AtomicPtr::new(null_mut());
static SHMEM_IOPS: AtomicPtr<bindings::inode_operations> = AtomicPtr::new(null_mut());

fn shmem_fops() -> &'static bindings::file_operations {
    // SAFETY: Only files of `create` reach the callers, and `create` stored shmem's (static)
    // operations before installing ours.
    unsafe { &*SHMEM_FOPS.load(Ordering::Acquire) }
}

fn shmem_iops() -> &'static bindings::inode_operations {
    // SAFETY: As in `shmem_fops`.
    unsafe { &*SHMEM_IOPS.load(Ordering::Acquire) }
}

/// A new open of the inode (through `/proc/<pid>/fd`) would make a file without the provider's
/// data, which no check could allow anything: refused.
extern "C" fn reopen(_inode: *mut bindings::inode, _file: *mut bindings::file) -> c_int {
    EPERM.to_errno()
}

/// `setattr` of every inode of [`create`]: consumers size their view of the file once, so the
/// size is set once, from 0, to whole pages.
///
/// # Safety
///
/// Called by the VFS for an inode of [`create`], locked.
unsafe extern "C" fn inode_setattr(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    attr: *mut bindings::iattr,
) -> c_int {
    // SAFETY: The VFS passes a positive dentry and valid attributes.
    let (inode, attr_ref) = unsafe { ((*dentry).d_inode, &*attr) };
    if attr_ref.ia_valid & bindings::ATTR_SIZE != 0 {
        // SAFETY: The inode is valid while its dentry is.
        if unsafe { Inode::from_raw(inode) }.size() != 0 {
            return EPERM.to_errno();
        }
        if !crate::mm::page_aligned(attr_ref.ia_size as u64) {
            return EINVAL.to_errno();
        }
    }
    match shmem_iops().setattr {
        // SAFETY: Forwarding the VFS's arguments to shmem, whose inode this is.
        Some(f) => unsafe { f(idmap, dentry, attr) },
        None => EPERM.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS for an inode of [`create`].
unsafe extern "C" fn inode_getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    request_mask: u32,
    query_flags: c_uint,
) -> c_int {
    match shmem_iops().getattr {
        // SAFETY: Forwarding the VFS's arguments to shmem, whose inode this is.
        Some(f) => unsafe { f(idmap, path, stat, request_mask, query_flags) },
        None => EINVAL.to_errno(),
    }
}

/// The implementer of the inode's tables: built-in code, not a provider.
struct BuiltIn;

const INODE_OPS_RAW: bindings::inode_operations = bindings::inode_operations {
    setattr: Some(inode_setattr),
    getattr: Some(inode_getattr),
    // SAFETY: All-zero is a valid `inode_operations`: every other slot is empty.
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
};

// SAFETY: Built-in functions only.
static INODE_OPS: StaticTable<bindings::inode_operations, BuiltIn> =
    unsafe { StaticTable::from_raw(INODE_OPS_RAW) };

/// The inode's `i_fop`, used only to open it again; no owner: built in.
const INODE_FOPS_RAW: bindings::file_operations = bindings::file_operations {
    open: Some(reopen),
    // SAFETY: All-zero is a valid `file_operations`: every other slot is empty.
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
};

// SAFETY: A built-in function only.
static INODE_FOPS: StaticTable<bindings::file_operations, BuiltIn> =
    unsafe { StaticTable::from_raw(INODE_FOPS_RAW) };

/// The operations of a provider's files: checks that run before shmem's operations.
#[vtable]
pub trait Provider: Sized + 'static {
    /// What `file->private_data` holds.
    type Data: ForeignOwnable + Send + Sync;

    /// The module of the provider: each file pins it.
    const OWNER: &'static ThisModule;

    /// The provider's table (`static TABLE: ProviderTable<Self> = ProviderTable::new();`).
    fn table() -> &'static ProviderTable<Self>;

    /// `memfd_create(name, flags)` with `MFD_INACCESSIBLE`: usually [`create`] with new data.
    fn create(name: &CStr, flags: u32) -> Result<NewShmemFile<Self>>;

    /// The last reference to the file is gone; `data` is handed back. The file itself is not
    /// given: no new reference to it may be taken.
    fn release(data: Self::Data, inode: &Inode);

    /// `read(2)` and its kin: `Ok` lets shmem read.
    fn may_read(data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result;

    /// `write(2)` and its kin: `Ok` lets shmem write.
    fn may_write(data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result;

    /// `mmap(2)`: `Ok` lets shmem map the file.
    fn may_mmap(data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result;

    /// A memory error in pages `[start, end)` of the file; a folio of the range is locked.
    /// shmem keeps the folio, and [`get_folio`] refuses it with `EHWPOISON`: what is left is
    /// to make the consumers let go of the pages.
    fn memory_error(data: <Self::Data as ForeignOwnable>::Borrowed<'_>, start: u64, end: u64);

    /// `fallocate(2)`; [`ShmemFile::allocate`] and [`ShmemFile::punch_hole`] do shmem's part.
    fn fallocate(
        data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        file: &ShmemFile,
        mode: i32,
        offset: i64,
        len: i64,
    ) -> Result;
}

/// A file of a [`Provider`], as its `fallocate` sees it.
#[repr(transparent)]
pub struct ShmemFile(File);

impl ShmemFile {
    /// The file.
    pub fn file(&self) -> &File {
        &self.0
    }

    /// shmem's `fallocate` without `FALLOC_FL_PUNCH_HOLE`: allocates the range.
    pub fn allocate(&self, mode: i32, offset: i64, len: i64) -> Result {
        if mode as u32 & bindings::FALLOC_FL_PUNCH_HOLE != 0 {
            return Err(EINVAL);
        }
        self.shmem_fallocate(mode, offset, len)
    }

    /// shmem's `fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`: frees the range,
    /// in whole pages, which `inv` invalidates in the file's consumers (`EINVAL` if it does
    /// not, or if the range is not page-aligned), so that none of them still uses a page being
    /// freed. Whole pages only: shmem does not zero the partial pages of an inaccessible
    /// mapping (6.12's `truncate_inode_partial_folio()`), which would keep their old bytes.
    pub fn punch_hole(&self, inv: &Invalidation<'_>, offset: i64, len: i64) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if offset < 0
            || len <= 0
            || !crate::mm::page_aligned(offset as u64)
            || !crate::mm::page_aligned(len as u64)
        {
            return Err(EINVAL);
        }
        let shift = crate::page::PAGE_SHIFT;
        if !inv.covers(&self.0, offset as u64 >> shift, end as u64 >> shift) {
            return Err(EINVAL);
        }
        let mode = bindings::FALLOC_FL_PUNCH_HOLE | bindings::FALLOC_FL_KEEP_SIZE;
        self.shmem_fallocate(mode as i32, offset, len)?;
        // Large folios (`shmem_enabled` gives them) that shmem could not split; the consumers
        // are invalidated meanwhile, so their references drain. No consumer prepares these
        // pages for a guest, so they may be zeroed in place.
        crate::mm::filemap::finish_partial_truncate(
            self.0.inode().mapping(),
            offset as u64 >> shift,
            end as u64 >> shift,
            true,
            || self.shmem_fallocate(mode as i32, offset, len),
        )
    }

    fn shmem_fallocate(&self, mode: i32, offset: i64, len: i64) -> Result {
        let f = shmem_fops().fallocate.ok_or(EOPNOTSUPP)?;
        // SAFETY: The file is a shmem file (a file of a provider, made by `create`),
        // referenced for the duration of the call.
        let r = unsafe { f(self.0.as_ptr(), mode, offset, len) };
        to_result(r as c_int)
    }
}

struct Vtable<T: Provider>(PhantomData<T>);

impl<T: Provider> Vtable<T> {
    /// # Safety
    ///
    /// `file` is a live file of `T`, whose `private_data` came from `T::Data::into_foreign`.
    unsafe fn data<'a>(file: *mut bindings::file) -> <T::Data as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: Per the function's safety requirement; `release` gives the data back only
        // once no other file operation can run.
        unsafe { T::Data::borrow((*file).private_data) }
    }

    /// `read_iter` and `write_iter`: the provider's `check`, then shmem's `op`.
    ///
    /// # Safety
    ///
    /// Called by the VFS for a file of `T`, with `op` shmem's operation of the same name.
    unsafe fn forward_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
        check: fn(<T::Data as ForeignOwnable>::Borrowed<'_>) -> Result,
        op: Option<unsafe extern "C" fn(*mut bindings::kiocb, *mut bindings::iov_iter) -> isize>,
    ) -> isize {
        // SAFETY: The VFS passes a valid `kiocb` of a file of `T`.
        if let Err(e) = check(unsafe { Self::data((*iocb).ki_filp) }) {
            return e.to_errno() as isize;
        }
        match op {
            // SAFETY: Forwarding the VFS's arguments to shmem, whose file this is.
            Some(f) => unsafe { f(iocb, iter) },
            None => EINVAL.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn read_iter(
        iocb: *mut bindings::kiocb,
        to: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: Per the function's safety requirement.
        unsafe { Self::forward_iter(iocb, to, T::may_read, shmem_fops().read_iter) }
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn write_iter(
        iocb: *mut bindings::kiocb,
        from: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: Per the function's safety requirement.
        unsafe { Self::forward_iter(iocb, from, T::may_write, shmem_fops().write_iter) }
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The VFS passes a file of `T`.
        if let Err(e) = T::may_mmap(unsafe { Self::data(file) }) {
            return e.to_errno();
        }
        match shmem_fops().mmap {
            // SAFETY: Forwarding the VFS's arguments to shmem, whose file this is.
            Some(f) => unsafe { f(file, vma) },
            None => ENODEV.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The file is valid for the callback, so is its mapping.
        let mapping = unsafe { (*file).f_mapping };
        // The memory-error path finds the data through the mapping, which may outlive the file
        // (an `O_PATH` reference): unpublish it, waiting for a reader in flight.
        // SAFETY: As above; `i_private_data` is only read under `i_mmap_rwsem`.
        unsafe {
            bindings::i_mmap_lock_write(mapping);
            (*mapping).i_private_data = null_mut();
            bindings::i_mmap_unlock_write(mapping);
        }
        // SAFETY: `private_data` came from `into_foreign` in `create` and is given back exactly
        // once, here, when no other operation can run on the file, and no memory error can
        // reach it (above).
        let data = unsafe { T::Data::from_foreign((*file).private_data) };
        // SAFETY: The inode outlives the file, which is valid for the duration of the callback.
        T::release(data, unsafe { Inode::from_raw((*file).f_inode) });
        0
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn fallocate(
        file: *mut bindings::file,
        mode: c_int,
        offset: i64,
        len: i64,
    ) -> c_long {
        from_result(|| {
            // SAFETY: The VFS holds a reference on the file for the call; `ShmemFile` is a
            // transparent `File`, itself a transparent `struct file`.
            let shmem = unsafe { &*file.cast_const().cast::<ShmemFile>() };
            // SAFETY: The VFS passes a file of `T`.
            T::fallocate(unsafe { Self::data(file) }, shmem, mode, offset, len)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS for a file of `T`.
    unsafe extern "C" fn llseek(file: *mut bindings::file, offset: i64, whence: c_int) -> i64 {
        match shmem_fops().llseek {
            // SAFETY: Forwarding the VFS's arguments to shmem, whose file this is.
            Some(f) => unsafe { f(file, offset, whence) },
            None => EINVAL.to_errno() as i64,
        }
    }

    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: T::OWNER.as_ptr(),
        open: Some(reopen),
        release: Some(Self::release),
        read_iter: Some(Self::read_iter),
        write_iter: Some(Self::write_iter),
        mmap: Some(Self::mmap),
        llseek: Some(Self::llseek),
        fallocate: Some(Self::fallocate),
        fsync: Some(bindings::noop_fsync),
        // SAFETY: All-zero is a valid `file_operations`: every other slot is empty (so no
        // splice, which would reach the page cache around `read_iter`/`write_iter`).
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };

    /// # Safety
    ///
    /// `name` is a NUL-terminated string, valid for the call.
    unsafe extern "C" fn create_file(name: *const c_char, flags: c_uint) -> *mut bindings::file {
        // SAFETY: Per the function's safety requirement.
        let name = unsafe { CStr::from_char_ptr(name) };
        match T::create(name, flags) {
            // memfd writes the file's mode and flags before it installs it: fine, as nobody
            // else sees it (`NewShmemFile`).
            Ok(file) => ARef::into_raw(file.0).as_ptr().cast(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called by memfd's memory-error hook for an inaccessible shmem mapping, with a folio of
    /// it locked and a reference on `T`'s module.
    unsafe extern "C" fn memory_error(
        mapping: *mut bindings::address_space,
        start: c_ulong,
        end: c_ulong,
    ) {
        // SAFETY: The mapping is alive while one of its folios is locked. `i_private_data` is
        // NULL or, while the file lives, the file (`create`), of whichever provider made it;
        // `release` clears it under the write lock before the file's data is given back and
        // the file freed, so under the read lock both outlive this borrow. The data is `T`'s
        // only if the file's operations are `T`'s.
        unsafe {
            bindings::i_mmap_lock_read(mapping);
            let file = (*mapping).i_private_data.cast::<bindings::file>();
            if !file.is_null() && ptr::eq((*file).f_op, &T::table().as_raw().fops) {
                T::memory_error(
                    T::Data::borrow((*file).private_data),
                    start as u64,
                    end as u64,
                );
            }
            bindings::i_mmap_unlock_read(mapping);
        }
    }

    const OPS: bindings::memfd_inaccessible_ops = bindings::memfd_inaccessible_ops {
        owner: T::OWNER.as_ptr(),
        create: Some(Self::create_file),
        memory_error: Some(Self::memory_error),
    };
}

/// What a provider's table holds: memfd's ops, and the file operations of its files.
#[doc(hidden)]
pub struct ProviderOps {
    fops: bindings::file_operations,
    ops: bindings::memfd_inaccessible_ops,
}

/// A provider's tables, in a `static` of its module; files are recognised by the address of
/// their file operations.
pub type ProviderTable<T> = StaticTable<ProviderOps, T>;

impl<T: Provider> ProviderTable<T> {
    /// `T`'s tables.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        let ops = ProviderOps {
            fops: Vtable::<T>::FOPS,
            ops: Vtable::<T>::OPS,
        };
        // SAFETY: `ops` holds `T`'s trampolines, `T::OWNER` and built-in functions only.
        unsafe { Self::from_raw(ops) }
    }
}

/// Creates a shmem file named `name` for `T`, holding `data`; its page cache is inaccessible
/// and unmovable.
pub fn create<T: Provider>(name: &CStr, data: T::Data) -> Result<NewShmemFile<T>> {
    // SAFETY: `name` is NUL-terminated; size 0 and `VM_NORESERVE` as memfd_create does.
    let ptr = from_err_ptr(unsafe {
        bindings::shmem_file_setup(name.as_char_ptr(), 0, bindings::VM_NORESERVE as _)
    })?;
    // SAFETY: `shmem_file_setup` returned a new reference, which we take over.
    let file = unsafe { File::from_raw_owned(NonNull::new_unchecked(ptr)) };
    let inode = file.inode().as_raw();
    // SAFETY: The file is new, seen by nobody else: its operations and inode can be read and
    // written without locking. shmem's operations are static, so recording them is sound.
    unsafe {
        SHMEM_FOPS.store((*ptr).f_op.cast_mut(), Ordering::Release);
        SHMEM_IOPS.store((*inode).i_op.cast_mut(), Ordering::Release);
    }
    // The file will drop a reference on `T::OWNER` when it goes (`fops_put`).
    // SAFETY: `T::OWNER` is a live module: it is running this code.
    if !unsafe { bindings::try_module_get(T::OWNER.as_ptr()) } {
        return Err(ENODEV);
    }
    // SAFETY: As above, nobody else sees the file yet. shmem's file operations hold no module
    // reference, so nothing is dropped by replacing them; `release` gives `data` back. The
    // inode gets only built-in tables: it may outlive the provider's module.
    unsafe {
        (*ptr).private_data = data.into_foreign() as *mut _;
        // For the memory-error path, which starts from the mapping (see `Vtable::release`).
        (*(*ptr).f_mapping).i_private_data = ptr.cast();
        (*ptr).f_op = &T::table().as_raw().fops;
        (*inode).__bindgen_anon_3.i_fop = INODE_FOPS.as_raw();
        (*inode).i_op = INODE_OPS.as_raw();
    }
    let mapping = file.inode().mapping();
    mapping.set_inaccessible();
    // SAFETY: The mapping is valid while the file is.
    let gfp = unsafe { bindings::mapping_gfp_mask(mapping.as_raw()) };
    mapping.set_gfp_mask(gfp & !bindings::__GFP_MOVABLE);
    // INVARIANT: Made here, with `T`'s operations, and not shared.
    Ok(NewShmemFile(file, PhantomData))
}

/// A file [`create`] just made for `T`, that nobody else has seen: memfd sets its open flags
/// before it installs it.
///
/// # Invariants
///
/// The file has `T`'s operations and no other reference to it has been given out.
pub struct NewShmemFile<T: Provider>(ARef<File>, PhantomData<fn(T) -> T>);

/// The data of `file` if it is a file of `T`.
pub fn data<T: Provider>(file: &File) -> Option<<T::Data as ForeignOwnable>::Borrowed<'_>> {
    // SAFETY: A referenced file's `f_op` is stable.
    if !ptr::eq(unsafe { (*file.as_ptr()).f_op }, &T::table().as_raw().fops) {
        return None;
    }
    // SAFETY: The file is a live file of `T`, referenced for `'_`.
    Some(unsafe { Vtable::<T>::data(file.as_ptr()) })
}

/// The folio at page `index` of a file of `T`, allocated and zeroed if it is a hole; locked,
/// with a reference, and dirty: shmem leaves a folio it allocates here clean, and a clean folio
/// can be evicted under a consumer that maps it. `EINVAL` past the end of the file or if it is
/// not `T`'s, `EHWPOISON` if the page has a memory error.
pub fn get_folio<T: Provider>(file: &File, index: u64) -> Result<LockedFolio> {
    // shmem_get_folio() on another filesystem's inode would treat it as shmem's.
    if data::<T>(file).is_none() {
        return Err(EINVAL);
    }
    let mut folio = null_mut();
    // SAFETY: The file is a live shmem file (a file of `T`, made by `create`); on success
    // `folio` is locked and referenced.
    to_result(unsafe {
        bindings::shmem_get_folio(
            file.inode().as_raw(),
            index as _,
            0,
            &mut folio,
            bindings::sgp_type_SGP_CACHE,
        )
    })?;
    let folio = NonNull::new(folio).ok_or(ENOMEM)?;
    // SAFETY: `shmem_get_folio` returned it locked and referenced.
    let folio = unsafe { LockedFolio::from_raw_locked(folio) };
    // shmem keeps a poisoned folio in the page cache and, for this lookup, hands it out; a
    // large one may have the error in any of its pages.
    if folio.contains_hwpoison() {
        return Err(EHWPOISON);
    }
    folio.mark_dirty();
    Ok(folio)
}

/// The registration of `T` as the provider of `MFD_INACCESSIBLE`; dropping it unregisters.
///
/// # Invariants
///
/// `table.ops` is registered.
pub struct Registration<T: Provider> {
    table: &'static ProviderTable<T>,
}

impl<T: Provider> Registration<T> {
    /// Registers `T`; `EBUSY` if another provider is registered.
    pub fn new() -> Result<Self> {
        let table = T::table();
        // SAFETY: The ops are `'static`; the files they make pin their module.
        to_result(unsafe { bindings::memfd_register_inaccessible(&table.as_raw().ops) })?;
        // INVARIANT: Registered just now.
        Ok(Self { table })
    }
}

impl<T: Provider> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `table.ops` is registered (type invariant): the very pointer `new` passed.
        unsafe { bindings::memfd_unregister_inaccessible(&self.table.as_raw().ops) };
    }
}
