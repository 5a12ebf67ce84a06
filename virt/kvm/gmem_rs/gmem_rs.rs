// SPDX-License-Identifier: GPL-2.0

//! gmem_rs: KVM's guest_memfd, served by a Rust module.
//!
//! While loaded, `KVM_CREATE_GUEST_MEMFD` creates gmem_rs files, with the uAPI and errno
//! contract of 6.12's built-in guest_memfd (Documentation/virt/kvm/gmem_rs.rst).
//!
//! Each file is a [`Gmem`]: the VM it belongs to (a reference: the file pins the VM, never the
//! other way round) and its bindings to memslots. Memory lives in the file's page cache,
//! which is inaccessible (unmovable, unevictable) and freed when the file is released.
//!
//! # Lock order
//!
//! `kvm->slots_lock` (release), then the mapping's `invalidate_lock` (exclusive for punch-hole,
//! bind, unbind, populate and release; shared for allocation), then folio locks, then
//! `Gmem::bindings`, then KVM's `mmu_lock` (inside `Kvm::zap_begin`).
//!
//! `Gmem::bindings` is a leaf but for `mmu_lock`: nothing waits for a folio lock or for
//! `invalidate_lock` while holding it. Faults look their binding up under it and drop it before
//! they take the folio; punch-hole and release zap under it and drop it before they truncate;
//! memory errors, which arrive with the folio locked, take it alone (and not `invalidate_lock`,
//! which truncation holds while it waits for folio locks). A punch racing with a fault is
//! caught by KVM's invalidation sequence: the fault retries. Lockdep cannot see folio locks;
//! this order is the one that holds on every path.

use kernel::{
    c_str,
    fs::{
        anon_file::{FileOperations, NewFile},
        falloc::{KEEP_SIZE, PUNCH_HOLE},
        flags::O_RDWR,
        File, FileDescriptorReservation, Inode,
    },
    kvm::{BoundSlot, GmemBackend, Kvm, MemorySlot, PopulateCallback, Registration, ZapGuard},
    mm::{
        self,
        filemap::{AddressSpace, AddressSpaceOperations, MemoryFailure, GFP_HIGHUSER},
        folio::Folio,
        page_aligned,
    },
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, ArcBorrow, Mutex},
    types::ARef,
    uaccess::UserPtr,
};

module! {
    type: GmemRsModule,
    name: "gmem_rs",
    author: "gmem-rs developers",
    description: "KVM guest_memfd backend in Rust",
    license: "GPL",
}

const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;
const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// A range of the file, in pages, bound to a memslot; keyed by its first page.
struct Binding {
    end: u64,
    slot: BoundSlot,
}

type Bindings = RBTree<u64, Binding>;

/// The bindings that overlap pages `[start, end)`.
fn overlapping(bindings: &Bindings, start: u64, end: u64) -> impl Iterator<Item = &Binding> {
    bindings
        .iter()
        .filter(move |(s, b)| **s < end && start < b.end)
        .map(|(_, b)| b)
}

/// One guest_memfd file.
#[pin_data]
struct Gmem {
    kvm: ARef<Kvm>,
    /// Changed under the mapping's exclusive `invalidate_lock`; this mutex lets faults read it
    /// without that lock.
    #[pin]
    bindings: Mutex<Bindings>,
}

impl Gmem {
    /// Whether page `index` of the file is bound to `slot`.
    fn is_bound(&self, slot: &MemorySlot, index: u64) -> bool {
        overlapping(&self.bindings.lock(), index, index + 1).any(|b| b.slot.is(slot))
    }

    /// Begins the invalidation of pages `[start, end)`, zapping every slot bound to them.
    fn zap_begin(&self, bindings: &Bindings, start: u64, end: u64) -> Option<ZapGuard<'_>> {
        self.kvm.zap_begin(
            overlapping(bindings, start, end).map(|b| b.slot.slot()),
            start,
            end,
        )
    }

    fn punch_hole(&self, inode: &Inode, offset: u64, len: u64) {
        let mapping = inode.mapping();
        let (start, end) = (offset >> PAGE_SHIFT, (offset + len) >> PAGE_SHIFT);
        let inval = mapping.invalidate_lock();
        // Zap first, so the guest never maps a page being freed; end after the truncation.
        let zap = self.zap_begin(&self.bindings.lock(), start, end);
        mapping.truncate_range(&inval, offset as i64, (offset + len - 1) as i64);
        drop(zap);
    }

    fn allocate(&self, inode: &Inode, offset: u64, len: u64) -> Result {
        // The size is fixed: allocating past it is an error, as in 6.12.
        if offset + len > inode.size() as u64 {
            return Err(EINVAL);
        }
        let mapping = inode.mapping();
        let _inval = mapping.invalidate_lock_shared();
        let end = (offset + len) >> PAGE_SHIFT;
        let mut index = offset >> PAGE_SHIFT;
        // Once, not per page: reading `current` is an out-of-line helper call (3% of the
        // profile when it was in the loop).
        let task = kernel::current!();
        while index < end {
            if task.signal_pending() {
                return Err(EINTR);
            }
            index = mapping.populate_folio(index)?;
            mm::cond_resched();
        }
        Ok(())
    }
}

struct GmemFops;

#[vtable]
impl FileOperations for GmemFops {
    type Data = Arc<Gmem>;
    const OWNER: &'static ThisModule = &THIS_MODULE;

    fn release(gmem: Arc<Gmem>, file: &File) {
        let mapping = file.inode().mapping();
        {
            // Bindings are dropped under slots_lock: KVM frees memslots under it.
            let slots = gmem.kvm.lock_slots();
            let inval = mapping.invalidate_lock();
            {
                let mut bindings = gmem.bindings.lock();
                for b in bindings.values() {
                    b.slot.slot().clear_file();
                }
                drop(gmem.zap_begin(&bindings, 0, u64::MAX));
                *bindings = RBTree::new();
            }
            // The VM's memslots are free to change again; free the memory now, while the
            // module is pinned by the file (the inode is evicted after the file drops its
            // module reference).
            drop(slots);
            drop(mapping.take_aops_private::<GmemAops>(&inval));
        }
        // The last reference on the VM may go here, after the locks.
        drop(gmem);
    }

    fn fallocate(
        gmem: ArcBorrow<'_, Gmem>,
        file: &File,
        mode: i32,
        offset: i64,
        len: i64,
    ) -> Result {
        let mode = mode as u32;
        if mode & KEEP_SIZE == 0 {
            return Err(EOPNOTSUPP);
        }
        if mode & !(KEEP_SIZE | PUNCH_HOLE) != 0 {
            return Err(EOPNOTSUPP);
        }
        // vfs_fallocate() rejected negative offsets and lengths, and overflows.
        let (offset, len) = (offset as u64, len as u64);
        if !page_aligned(offset) || !page_aligned(len) {
            return Err(EINVAL);
        }
        if mode & PUNCH_HOLE != 0 {
            gmem.punch_hole(file.inode(), offset, len);
        } else {
            gmem.allocate(file.inode(), offset, len)?;
        }
        // As in 6.12, a failure to update the timestamps is not the caller's error.
        let _ = file.modified();
        Ok(())
    }
}

struct GmemAops;

#[vtable]
impl AddressSpaceOperations for GmemAops {
    type Private = Arc<Gmem>;

    // `free_folio` only where the arch has an invalidate hook, as in C: otherwise it is an
    // indirect call per freed folio that does nothing (1% of `allocate`'s profile).
    const HAS_FREE_FOLIO: bool = cfg!(CONFIG_HAVE_KVM_ARCH_GMEM_INVALIDATE);

    /// Zap the folio from the guest and keep it: a later fault gets -EHWPOISON. After release
    /// too (no bindings left), as in C.
    fn error_remove_folio(
        gmem: Option<ArcBorrow<'_, Gmem>>,
        _mapping: &AddressSpace,
        folio: &Folio,
    ) -> Result<MemoryFailure> {
        if let Some(gmem) = gmem {
            let start = folio.index();
            let end = start + (1 << folio.order());
            drop(gmem.zap_begin(&gmem.bindings.lock(), start, end));
        }
        Ok(MemoryFailure::Delayed)
    }

    fn free_folio(folio: &Folio) {
        let pfn = folio.pfn();
        kernel::kvm::arch_invalidate(pfn, pfn + (1 << folio.order()));
    }
}

struct GmemRs;

#[vtable]
impl GmemBackend for GmemRs {
    const OWNER: &'static ThisModule = &THIS_MODULE;
    type Fops = GmemFops;
    type FileData = Arc<Gmem>;

    fn create(kvm: &Kvm, size: u64, flags: u64) -> Result<u32> {
        // No flags are defined in 6.12; the size is a positive loff_t in whole pages.
        if flags != 0 || size == 0 || size > i64::MAX as u64 || !page_aligned(size) {
            return Err(EINVAL);
        }
        let fd = FileDescriptorReservation::get_unused_fd_flags(0)?;
        let gmem = Arc::pin_init(
            pin_init!(Gmem {
                kvm: ARef::from(kvm),
                bindings <- new_mutex!(RBTree::new(), "gmem_rs::bindings"),
            }),
            GFP_KERNEL,
        )?;
        let aops_private = gmem.clone();
        let mut file = NewFile::<GmemFops>::create(c_str!("[kvm-gmem]"), gmem, O_RDWR)?;
        file.set_fixed_size(size as i64);
        file.set_aops::<GmemAops>(aops_private);
        let mapping = file.inode().mapping();
        mapping.set_gfp_mask(GFP_HIGHUSER);
        mapping.set_inaccessible();
        if !mapping.is_unevictable() {
            pr_warn!("inaccessible mapping is not unevictable\n");
        }
        let nr = fd.reserved_fd();
        fd.fd_install(file.into_file());
        Ok(nr)
    }

    fn bind(
        kvm: &Kvm,
        slot: BoundSlot,
        file: &File,
        gmem: ArcBorrow<'_, Gmem>,
        offset: u64,
    ) -> Result {
        // Another VM's guest_memfd, or a range out of the file, is EINVAL.
        if gmem.kvm.as_raw() != kvm.as_raw() {
            return Err(EINVAL);
        }
        let npages = slot.slot().npages();
        let size = npages.checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let end_byte = offset.checked_add(size).ok_or(EINVAL)?;
        if !page_aligned(offset) || end_byte > file.inode().size() as u64 {
            return Err(EINVAL);
        }
        let (start, end) = (offset >> PAGE_SHIFT, end_byte >> PAGE_SHIFT);

        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let _inval = file.inode().mapping().invalidate_lock();
        let mut bindings = gmem.bindings.lock();
        if overlapping(&bindings, start, end).next().is_some() {
            return Err(EINVAL);
        }
        // The slot is not visible to the guest yet, so faults see the file once it is.
        slot.slot().set_file(file, start);
        bindings.insert(node.into_node(start, Binding { end, slot }));
        Ok(())
    }

    fn unbind(slot: &MemorySlot, gmem: Option<ArcBorrow<'_, Gmem>>) {
        // No file: its release has dropped the binding and zapped it.
        let Some(gmem) = gmem else { return };
        let file = slot.get_file();
        // Taking invalidate_lock needs the file; a closing file's release waits for
        // slots_lock, held by our caller, so the bindings can be changed without it.
        let _inval = file.as_ref().map(|f| f.inode().mapping().invalidate_lock());
        let mut bindings = gmem.bindings.lock();
        let start = bindings
            .iter()
            .find(|(_, b)| b.slot.is(slot))
            .map(|(s, _)| *s);
        if let Some(start) = start {
            bindings.remove(&start);
        }
        slot.clear_file();
    }

    fn get_pfn(
        _kvm: &Kvm,
        slot: &MemorySlot,
        file: &File,
        gmem: ArcBorrow<'_, Gmem>,
        gfn: u64,
    ) -> Result<(u64, u32)> {
        let index = slot.index_of(gfn);
        // Not held while waiting for the folio: see the lock order.
        if !gmem.is_bound(slot, index) {
            return Err(EIO);
        }
        let folio = file.inode().mapping().grab_folio(index)?;
        if folio.test_hwpoison() {
            return Err(EHWPOISON);
        }
        if !folio.test_uptodate() {
            // First use: the guest must never see stale host data.
            folio.zero();
            let pfn = folio.pfn();
            let gfn_base = gfn - (index - folio.index());
            gmem.kvm.arch_prepare(gfn_base, pfn, folio.order())?;
            folio.mark_uptodate();
        }
        Ok((Folio::into_pfn_ref(folio.unlock(), index), 0))
    }

    fn populate(
        kvm: &Kvm,
        slot: &MemorySlot,
        file: &File,
        gmem: ArcBorrow<'_, Gmem>,
        gfn: u64,
        src: UserPtr,
        npages: i64,
        cb: &PopulateCallback,
    ) -> Result<i64> {
        if npages < 0 {
            return Err(EINVAL);
        }
        let mapping = file.inode().mapping();
        let _inval = mapping.invalidate_lock();
        // As C: the slot must be the one bound there (bindings do not change under the lock).
        if !gmem.is_bound(slot, slot.index_of(gfn)) {
            return Err(EIO);
        }
        let npages = (npages as u64).min(slot.npages() - (gfn - slot.base_gfn()));
        let mut done = 0u64;
        let mut result = Ok(());
        while done < npages {
            if kernel::current!().signal_pending() {
                result = Err(EINTR);
                break;
            }
            let g = gfn + done;
            let index = slot.index_of(g);
            let step = (|| -> Result {
                let folio = mapping.grab_folio(index)?;
                if folio.test_hwpoison() {
                    return Err(EHWPOISON);
                }
                if folio.test_uptodate() {
                    return Err(EEXIST);
                }
                if !kvm.range_is_private(g, g + 1) {
                    return Err(EINVAL);
                }
                let page_src = if src != 0 {
                    src + (done << PAGE_SHIFT) as usize
                } else {
                    0
                };
                cb.call(kvm, g, folio.pfn() + (index - folio.index()), page_src, 0)?;
                folio.mark_uptodate();
                Ok(())
            })();
            if let Err(e) = step {
                result = Err(e);
                break;
            }
            done += 1;
        }
        match result {
            Err(e) if done == 0 => Err(e),
            _ => Ok(done as i64),
        }
    }
}

struct GmemRsModule {
    _registration: Registration<GmemRs>,
}

impl kernel::Module for GmemRsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::register()?;
        pr_info!("guest_memfd backend registered\n");
        Ok(Self {
            _registration: registration,
        })
    }
}
