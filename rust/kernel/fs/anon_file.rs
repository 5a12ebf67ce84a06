// SPDX-License-Identifier: GPL-2.0

//! Files backed by their own anonymous inode, with Rust file operations.
//!
//! [`NewFile`] is a file that has just been created and that nobody else sees yet: only in that
//! state can its inode be set up (size, inode and address-space operations). Turning it into an
//! [`ARef<File>`] ends that state.

use crate::{
    bindings,
    error::{code::*, from_err_ptr, from_result, Result},
    fs::{File, Inode, Kiocb},
    iov::IovIterSource,
    mm::{
        filemap::{AddressSpaceOperations, Gfp},
        virt::{VmOpsTable, VmaNew},
    },
    prelude::*,
    static_table::StaticTable,
    str::CStr,
    sync::{aref::ARef, LockClassKey},
    types::ForeignOwnable,
    ThisModule,
};
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};

/// File operations of a file created with [`NewFile::create`]; their table is a
/// [`FileOpsTable`].
#[vtable]
pub trait FileOperations: Sized + 'static {
    /// What `file->private_data` holds.
    type Data: ForeignOwnable + Send + Sync;

    /// The module the operations live in: each file pins it.
    const OWNER: &'static ThisModule;

    /// The last reference to the file is gone. `data` is still the file's, and is dropped
    /// after this returns: whatever can still borrow it from the file (a lookup that found
    /// the file without a reference) is cut off here first. The file itself is not given: no
    /// new reference to it may be taken. After this, the page cache is emptied (an inode can
    /// outlive its file and its module: no folio may reach the module's operations then).
    fn release(data: <Self::Data as ForeignOwnable>::Borrowed<'_>, inode: &Inode);

    /// What serves the faults of the file's mappings: given if and only if `mmap` is.
    const VM_OPS: Option<&'static VmOpsTable<Self>> = None;

    /// Whether a mapping of a PMD's size or more, at an address the MM picks, starts where a
    /// PMD-sized folio of the file can be mapped whole (`thp_get_unmapped_area`).
    const PMD_ALIGNED: bool = false;

    /// `mmap(2)`: checks the new mapping, which [`FileOperations::VM_OPS`] then serves.
    /// Without it (and `VM_OPS`), `mmap` fails with `ENODEV`.
    fn mmap(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _vma: &VmaNew,
    ) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `fallocate(2)`.
    fn fallocate(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _mode: i32,
        _offset: i64,
        _len: i64,
    ) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `ioctl(2)` with command `cmd` and argument `arg` (a user pointer, for the commands that
    /// take one; 32-bit callers' pointers are converted). An unknown command is `ENOTTY`.
    fn ioctl(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<i32> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `write(2)` and `pwrite(2)`: writes `iter` at `kiocb`'s position, which it advances past
    /// what it wrote, and returns how many bytes that is. With it, the files also seek
    /// (`generic_file_llseek`); [`NewFile::set_positioned`] says which of them do.
    fn write_iter(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _kiocb: &mut Kiocb<'_>,
        _iter: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

pub(crate) struct FopsVtable<T: FileOperations>(PhantomData<T>);

impl<T: FileOperations> FopsVtable<T> {
    /// # Safety
    ///
    /// Called by the VFS with a file created by [`NewFile::create::<T>`].
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
        // SAFETY: The VFS passes a valid file, for the duration of the callback; its inode
        // outlives it.
        let (ptr, inode) = unsafe { ((*file).private_data, Inode::from_raw((*file).f_inode)) };
        // SAFETY: `private_data` came from `T::Data::into_foreign` in `NewFile::create` and is
        // taken back only below, after this borrow ends.
        T::release(unsafe { T::Data::borrow(ptr) }, inode);
        {
            let mapping = inode.mapping();
            let _inval = mapping.invalidate_lock();
            // SAFETY: The inode is the file's own (`NewFile::create`), so is its page cache,
            // which has no backing store; `invalidate_lock` is held.
            unsafe { bindings::truncate_inode_pages_range(mapping.as_raw(), 0, -1) };
        }
        // SAFETY: As above; no other file operation runs once release has begun, so this is
        // the one and last use of `ptr`.
        drop(unsafe { T::Data::from_foreign(ptr) });
        0
    }

    /// # Safety
    ///
    /// Called by the VFS with a file created by [`NewFile::create::<T>`].
    unsafe extern "C" fn fallocate(
        file: *mut bindings::file,
        mode: i32,
        offset: i64,
        len: i64,
    ) -> crate::ffi::c_long {
        from_result(|| {
            // SAFETY: The VFS holds a reference on the file for the duration of the call.
            let file = unsafe { File::from_raw_file(file) };
            // SAFETY: `private_data` came from `into_foreign` and is only given back in
            // `release`, which cannot run while this call holds a file reference.
            let data = unsafe { T::Data::borrow(file.private_data()) };
            T::fallocate(data, file, mode, offset, len)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with a file created by [`NewFile::create::<T>`] and a VMA it is
    /// setting up for it.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> crate::ffi::c_int {
        from_result(|| {
            // SAFETY: The VFS holds a reference on the file for the duration of the call.
            let file = unsafe { File::from_raw_file(file) };
            // SAFETY: As in `fallocate`.
            let data = unsafe { T::Data::borrow(file.private_data()) };
            // The VMA's faults find the file's data through `vm_file`: it must be this file
            // (6.12's `mmap_region()` sets it before calling us; checked, not assumed).
            // SAFETY: The VMA is valid and being set up by `mmap`.
            if unsafe { (*vma).vm_file } != file.as_ptr() {
                return Err(EINVAL);
            }
            let ops = T::VM_OPS.ok_or(ENODEV)?;
            // SAFETY: The VMA is being set up by `mmap`.
            let vma = unsafe { VmaNew::from_raw(vma) };
            T::mmap(data, file, vma)?;
            // SAFETY: The VMA's file is this one, one of `T`'s, and `mmap` succeeds now.
            unsafe { vma.set_vm_ops(ops) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with a file created by [`NewFile::create::<T>`].
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: crate::ffi::c_uint,
        arg: crate::ffi::c_ulong,
    ) -> crate::ffi::c_long {
        from_result(|| {
            // SAFETY: The VFS holds a reference on the file for the duration of the call.
            let file = unsafe { File::from_raw_file(file) };
            // SAFETY: As in `fallocate`.
            let data = unsafe { T::Data::borrow(file.private_data()) };
            Ok(T::ioctl(data, file, cmd, arg)? as _)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with a `kiocb` of a file created by [`NewFile::create::<T>`], and the
    /// source of the write.
    unsafe extern "C" fn write_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The VFS passes a valid `kiocb`, whose file it holds a reference on, for the
        // duration of the call, and gives its position to this call alone.
        let mut kiocb = unsafe { Kiocb::from_raw(iocb) };
        // SAFETY: As in `fallocate`.
        let data = unsafe { T::Data::borrow(kiocb.file().private_data()) };
        // SAFETY: The VFS passes the write's source, valid for the call and used by nothing
        // else meanwhile.
        let iter = unsafe { IovIterSource::from_raw(iter) };
        match T::write_iter(data, &mut kiocb, iter) {
            // A write returns at most `MAX_RW_COUNT` bytes, which fits.
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    pub(crate) const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: T::OWNER.as_ptr(),
        open: Some(bindings::generic_file_open),
        release: Some(Self::release),
        // A mapping needs both its checks and its faults' handler: one without the other is
        // refused when the table is built, not found out at the first `mmap`.
        mmap: match (T::HAS_MMAP, T::VM_OPS.is_some()) {
            (true, true) => Some(Self::mmap),
            (false, false) => None,
            _ => crate::build_error!("FileOperations: mmap and VM_OPS go together"),
        },
        #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
        get_unmapped_area: if T::PMD_ALIGNED && T::VM_OPS.is_some() {
            Some(bindings::thp_get_unmapped_area)
        } else {
            None
        },
        fallocate: if T::HAS_FALLOCATE {
            Some(Self::fallocate)
        } else {
            None
        },
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_IOCTL {
            Some(bindings::compat_ptr_ioctl)
        } else {
            None
        },
        write_iter: if T::HAS_WRITE_ITER {
            Some(Self::write_iter)
        } else {
            None
        },
        // Set for every file (`FMODE_LSEEK`) by the VFS: `NewFile::set_positioned` clears it
        // on the files that do not write.
        llseek: if T::HAS_WRITE_ITER {
            Some(bindings::generic_file_llseek)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `file_operations`: every other slot is empty.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}

/// The `file_operations` of `T`'s files, in a `static` of the module that implements `T`
/// (`static FOPS: FileOpsTable<T> = FileOpsTable::new();`): files are recognised by its
/// address.
pub type FileOpsTable<T> = StaticTable<bindings::file_operations, T>;

impl<T: FileOperations> FileOpsTable<T> {
    /// The table of `T`'s operations.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        // SAFETY: `VTABLE` holds `T`'s trampolines, `generic_file_open` and `T::OWNER` only.
        unsafe { Self::from_raw(FopsVtable::<T>::VTABLE) }
    }
}

/// A file just created by [`NewFile::create`], seen by nobody else yet.
///
/// # Examples
///
/// A fixed-size file whose page cache is used directly:
///
/// ```
/// use kernel::{
///     c_str,
///     fs::{anon_file::{FileOperations, FileOpsTable, NewFile}, Inode},
///     mm::filemap::{AddressSpaceOperations, AopsTable},
///     prelude::*,
/// };
///
/// struct Example;
///
/// // SAFETY: A NULL owner stands for built-in code, which is never unloaded.
/// static OWNER: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };
/// static FOPS: FileOpsTable<Example> = FileOpsTable::new();
/// static AOPS: AopsTable<Example> = AopsTable::new();
///
/// #[vtable]
/// impl FileOperations for Example {
///     type Data = KBox<u32>;
///     const OWNER: &'static ThisModule = &OWNER;
///
///     // The last `fput()` may run later, from a workqueue: nothing to check there.
///     fn release(_data: &u32, _inode: &Inode) {}
/// }
///
/// #[vtable]
/// impl AddressSpaceOperations for Example {
///     type Private = ();
///     fn table() -> &'static AopsTable<Self> {
///         &AOPS
///     }
/// }
///
/// let mut file = NewFile::create(&FOPS, c_str!("[example]"), KBox::new(7, GFP_KERNEL)?, 2)?;
/// file.set_fixed_size(4 * 4096);
/// file.set_aops::<Example>(())?;
/// let file = file.into_file();
/// assert_eq!(file.inode().size(), 4 * 4096);
///
/// let mapping = file.inode().mapping().page_cache::<Example>().ok_or(EINVAL)?;
/// let folio = mapping.grab_folio(1, None, 0)?;
/// assert_eq!(folio.index(), 1);
/// assert_eq!(folio.order(), 0);
/// assert!(folio.pfn() != 0);
/// assert!(!folio.test_uptodate() && !folio.test_hwpoison());
/// // Zeroed and prepared on first use, and only then uptodate.
/// assert!(folio.init_once(|_| Err(EIO)).is_err());
/// assert!(!folio.test_uptodate());
/// folio.init_once(|_| Ok(()))?;
/// assert!(folio.test_uptodate());
/// // An uptodate folio is not prepared again (it may be a guest's).
/// folio.init_once(|_| Err(EIO))?;
/// drop(folio);
///
/// // The same folio is found again (only its owner's abstraction frees it).
/// assert!(mapping.grab_folio(1, None, 0)?.test_uptodate());
///
/// // Filling a range a folio at a time: each call says where the next one starts.
/// assert_eq!(mapping.populate_folio(2, None, 0)?, 3);
/// assert_eq!(mapping.populate_folio(3, None, 0)?, 4);
/// // Without `set_max_folio_order`, every folio has order 0.
/// assert_eq!(mapping.max_folio_order(), 0);
/// assert_eq!(mapping.grab_folio(0, None, kernel::mm::PMD_ORDER)?.order(), 0);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `file` is a file with operations `FopsVtable<T>`, with its own inode; no other reference to
/// it has been given out, so its inode may be set up without locking.
pub struct NewFile<T: FileOperations> {
    file: ARef<File>,
    /// Whether [`NewFile::set_aops`] ran.
    has_aops: bool,
    /// Invariant in `T`, as [`StaticTable`]: the file is `T`'s, not a supertype's.
    _p: PhantomData<fn(T) -> T>,
}

/// Inode operations of a file whose size is fixed at creation: `stat` reports it, any
/// attribute change (`ftruncate`, `chmod`, ...) fails with `EINVAL`.
static FIXED_SIZE_IOPS: bindings::inode_operations = bindings::inode_operations {
    getattr: Some(fixed_size_getattr),
    setattr: Some(fixed_size_setattr),
    // SAFETY: All-zero is a valid `inode_operations`: every other slot is empty.
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
};

/// # Safety
///
/// Called by the VFS with valid arguments.
unsafe extern "C" fn fixed_size_getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    request_mask: u32,
    _query_flags: u32,
) -> i32 {
    // SAFETY: The VFS passes a valid path with a positive dentry and a valid `stat` to fill.
    unsafe { bindings::generic_fillattr(idmap, request_mask, (*(*path).dentry).d_inode, stat) };
    0
}

/// # Safety
///
/// Called by the VFS with valid arguments.
unsafe extern "C" fn fixed_size_setattr(
    _idmap: *mut bindings::mnt_idmap,
    _dentry: *mut bindings::dentry,
    _attr: *mut bindings::iattr,
) -> i32 {
    EINVAL.to_errno()
}

impl<T: FileOperations> NewFile<T> {
    /// Creates a file with its own anonymous inode (`anon_inode_create_getfile`) and the
    /// operations `fops`, holding `data` in `private_data`, opened with `flags` (`O_*`).
    pub fn create(
        fops: &'static FileOpsTable<T>,
        name: &'static CStr,
        data: T::Data,
        flags: u32,
    ) -> Result<Self> {
        let ptr = data.into_foreign();
        // SAFETY: `name` is a static C string, the table is static, `ptr` stays valid until
        // `release` gives it back; a NULL context inode asks for a fresh one.
        let file = unsafe {
            bindings::anon_inode_create_getfile(
                name.as_char_ptr(),
                fops.as_raw(),
                ptr as *mut c_void,
                flags as i32,
                core::ptr::null(),
            )
        };
        let file = match from_err_ptr(file) {
            Ok(file) => file,
            Err(e) => {
                // SAFETY: The file was not created, so `release` will never see `ptr`.
                drop(unsafe { T::Data::from_foreign(ptr) });
                return Err(e);
            }
        };
        // SAFETY: `anon_inode_create_getfile` returned a new reference, which we take over.
        let file = unsafe { File::from_raw_owned(NonNull::new_unchecked(file)) };
        // INVARIANT: The file is new and only referenced here.
        Ok(Self {
            file,
            has_aops: false,
            _p: PhantomData,
        })
    }

    fn inode_raw(&self) -> *mut bindings::inode {
        self.file.inode().as_raw()
    }

    /// The file's inode.
    pub fn inode(&self) -> &Inode {
        self.file.inode()
    }

    /// Makes the file a regular file of `size` bytes that can never be resized.
    pub fn set_fixed_size(&mut self, size: i64) {
        let inode = self.inode_raw();
        // SAFETY: Nobody else sees the file (type invariant), so its inode can be written.
        unsafe {
            (*inode).i_op = &FIXED_SIZE_IOPS;
            (*inode).i_mode |= bindings::S_IFREG as u16;
            (*inode).i_size = size;
            (*self.file.as_ptr()).f_flags |= bindings::O_LARGEFILE;
        }
    }

    /// Whether `lseek(2)` and `pwrite(2)` work on the file (`FMODE_LSEEK`, `FMODE_PWRITE`,
    /// and `FMODE_ATOMIC_POS`, so that writes sharing the file position are serialized, as on
    /// a regular file): only for `T` with [`FileOperations::write_iter`]; otherwise both fail
    /// with `ESPIPE`, as they do on files that are not positioned.
    pub fn set_positioned(&mut self, positioned: bool) {
        let file = self.file.as_ptr();
        let modes = bindings::FMODE_LSEEK | bindings::FMODE_PWRITE | bindings::FMODE_ATOMIC_POS;
        // SAFETY: Nobody else sees the file (type invariant), so its mode can be written.
        unsafe {
            if positioned && T::HAS_WRITE_ITER {
                (*file).f_mode |= modes;
            } else {
                (*file).f_mode &= !modes;
            }
        }
    }

    /// Installs the address-space operations of `A` on the file's page cache, with `private`
    /// for them to use; see [`AddressSpaceOperations`]. Once: `EBUSY` if operations were
    /// installed already or the page cache has folios.
    ///
    /// `Copy` data only: nothing takes it back when the file goes, so it must have nothing to
    /// drop. An abstraction that owns a page cache and takes its data back at release (as
    /// [`GmemFile`](crate::kvm::GmemFile) does) installs any data with `install_aops`.
    pub fn set_aops<A: AddressSpaceOperations>(&mut self, private: A::Private) -> Result
    where
        A::Private: Copy,
    {
        self.install_aops::<A>(private)
    }

    /// [`NewFile::set_aops`] for data that must be dropped: the caller takes it back before
    /// the file is freed (`TruncateGuard::take_aops_private`, in its release).
    pub(crate) fn install_aops<A: AddressSpaceOperations>(
        &mut self,
        private: A::Private,
    ) -> Result {
        let inode = self.inode_raw();
        // SAFETY: Nobody else sees the file (type invariant), so its inode can be read.
        let busy = unsafe { !(*inode).i_private.is_null() || (*(*inode).i_mapping).nrpages != 0 };
        if self.has_aops || busy {
            return Err(EBUSY);
        }
        self.has_aops = true;
        // SAFETY: Nobody else sees the file (type invariant); the page cache is empty (checked
        // above), so no address-space operation runs before they are installed.
        unsafe {
            (*inode).i_private = private.into_foreign() as *mut c_void;
            (*(*inode).i_mapping).a_ops = A::table().as_raw();
        }
        Ok(())
    }

    /// Sets the allocation flags of the page cache's folios.
    pub fn set_gfp_mask(&mut self, gfp: Gfp) {
        self.inode().mapping().set_gfp_mask(gfp);
    }

    /// Keeps the page cache's uptodate folios out of the kernel's direct map
    /// (`AS_NO_DIRECT_MAP`). Crate-private: `kvm::GmemFile::create` sets it from the file's
    /// flags, so the flag and the mapping agree.
    pub(crate) fn set_no_direct_map(&mut self) {
        self.inode().mapping().set_no_direct_map();
    }

    /// Lets the page cache hold large folios, up to order `max` (see
    /// [`AddressSpace::max_folio_order`](crate::mm::filemap::AddressSpace::max_folio_order)
    /// for what it got).
    pub fn set_max_folio_order(&mut self, max: u32) {
        self.inode().mapping().set_max_folio_order(max);
    }

    /// Makes the page cache inaccessible: its folios are unmovable and unevictable, and the
    /// kernel does not read or write them on userspace's behalf.
    pub fn set_inaccessible(&mut self) {
        self.inode().mapping().set_inaccessible();
    }

    /// Gives the mapping's `invalidate_lock` a lockdep class of its own: files whose mapping
    /// faults take it under the mmap lock are told apart from the other anonymous inodes',
    /// under which some copy from userspace (6.12's guest_memfd populate).
    pub fn set_invalidate_lock_class(&mut self, key: &'static LockClassKey, name: &'static CStr) {
        // SAFETY: The mapping is valid, and nobody else sees the file yet: its lock is not
        // held. The key and the name are static.
        unsafe {
            bindings::mapping_set_invalidate_lock_class(
                self.inode().mapping().as_raw(),
                key.as_ptr(),
                name.as_char_ptr(),
            )
        };
    }

    /// Ends the set-up: the file can be shared from now on.
    pub fn into_file(self) -> ARef<File> {
        self.file
    }
}
