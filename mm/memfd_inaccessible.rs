// SPDX-License-Identifier: GPL-2.0

//! memfd_inaccessible: `memfd_create(MFD_INACCESSIBLE)`.
//!
//! The files are shmem files that userspace cannot read, write or map (`EPERM`), sized once by
//! `ftruncate(2)` from 0, filled with `fallocate(2)` and emptied with `FALLOC_FL_PUNCH_HOLE`.
//! Their memory reaches its consumers (KVM) through the memfile notifier: this module is a
//! backing store, and a punched hole is invalidated in every consumer before its pages are
//! freed. See Documentation/mm/memfile_notifier.rst.

use kernel::{
    fs::{
        falloc::{KEEP_SIZE, PUNCH_HOLE},
        File, Inode,
    },
    memfd::{self, NewShmemFile, Provider, ProviderTable, ShmemFile},
    memfile::{self, BackingStore, Node, StoreTable},
    mm::{folio::LockedFolio, page_aligned},
    page::PAGE_SHIFT,
    prelude::*,
    str::CStr,
};

module! {
    type: MemfdInaccessible,
    name: "memfd_inaccessible",
    author: "gmem-rs developers",
    description: "memfd_create(MFD_INACCESSIBLE): shmem files only consumers like KVM can use",
    license: "GPL",
}

static PROVIDER: ProviderTable<Inaccessible> = ProviderTable::new();
static STORE: StoreTable<Inaccessible> = StoreTable::new();

/// What each file holds: the notifiers of its consumers.
#[pin_data]
struct Inaccessible {
    #[pin]
    node: Node,
}

#[vtable]
impl Provider for Inaccessible {
    type Data = Pin<KBox<Inaccessible>>;
    const OWNER: &'static ThisModule = &THIS_MODULE;

    fn table() -> &'static ProviderTable<Self> {
        &PROVIDER
    }

    fn create(name: &CStr, _flags: u32) -> Result<NewShmemFile<Self>> {
        let data = KBox::pin_init(pin_init!(Inaccessible { node <- Node::new() }), GFP_KERNEL)?;
        memfd::create::<Self>(name, data)
    }

    fn release(data: Self::Data, _inode: &Inode) {
        // Consumers hold a file reference while registered, so none can be left.
        if data.node.has_notifiers() {
            pr_warn!("released with consumers registered\n");
        }
    }

    fn may_read(_data: Pin<&Inaccessible>) -> Result {
        Err(EPERM)
    }

    fn may_write(_data: Pin<&Inaccessible>) -> Result {
        Err(EPERM)
    }

    fn may_mmap(_data: Pin<&Inaccessible>) -> Result {
        Err(EPERM)
    }

    fn memory_error(data: Pin<&Inaccessible>, start: u64, end: u64) {
        data.node.memory_error(start, end);
    }

    fn fallocate(
        data: Pin<&Inaccessible>,
        file: &ShmemFile,
        mode: i32,
        offset: i64,
        len: i64,
    ) -> Result {
        let mode_bits = mode as u32;
        if mode_bits & !(KEEP_SIZE | PUNCH_HOLE) != 0 {
            return Err(EOPNOTSUPP);
        }
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if offset < 0 || len <= 0 || end > file.file().inode().size() {
            return Err(EINVAL);
        }
        if mode_bits & PUNCH_HOLE == 0 {
            return file.allocate(mode, offset, len);
        }
        if mode_bits & KEEP_SIZE == 0 {
            return Err(EOPNOTSUPP);
        }
        if !page_aligned(offset as u64) || !page_aligned(len as u64) {
            return Err(EINVAL);
        }
        // Consumers stop using the pages before shmem frees them, and do not map them again
        // until the punch is over.
        let (first, last) = ((offset >> PAGE_SHIFT) as u64, (end >> PAGE_SHIFT) as u64);
        data.node
            .invalidate(first, last, |inv| file.punch_hole(inv, offset, len))
    }
}

impl BackingStore for Inaccessible {
    const FLAGS: usize =
        memfile::F_USER_INACCESSIBLE | memfile::F_UNMOVABLE | memfile::F_UNRECLAIMABLE;
    const OWNER: &'static ThisModule = &THIS_MODULE;

    fn table() -> &'static StoreTable<Self> {
        &STORE
    }

    fn lookup_node(file: &File) -> Option<&Node> {
        memfd::data::<Self>(file).map(|data| &data.get_ref().node)
    }

    fn get_folio(file: &File, offset: u64) -> Result<LockedFolio> {
        memfd::get_folio::<Self>(file, offset)
    }
}

struct MemfdInaccessible {
    // Dropped in order: no new files, then no new consumers.
    _provider: memfd::Registration<Inaccessible>,
    _store: memfile::Registration<Inaccessible>,
}

impl kernel::Module for MemfdInaccessible {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let store = memfile::Registration::new()?;
        let provider = memfd::Registration::new()?;
        Ok(Self {
            _provider: provider,
            _store: store,
        })
    }
}
