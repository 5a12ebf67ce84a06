// SPDX-License-Identifier: GPL-2.0

//! gmem_rs: KVM's guest_memfd, served by a Rust module.
//!
//! While loaded, `KVM_CREATE_GUEST_MEMFD` creates gmem_rs files, with the uAPI and errno
//! contract of 6.12's built-in guest_memfd (Documentation/virt/kvm/gmem_rs.rst).
//!
//! Each file is a [`GmemFile`] of `kernel::kvm`, which keeps its VM and its bindings to
//! memslots; this module provides the memory. It lives in the file's page cache, which is
//! inaccessible (unmovable, unevictable) and freed when the file is released.
//!
//! # Lock order
//!
//! `kvm->slots_lock` (release, unbind) or the mmap lock (the VMM's faults), then the mapping's
//! `invalidate_lock` (exclusive for punch-hole, bind, unbind, populate, conversion and release;
//! shared for allocation and the VMM's faults on files that convert in place), then folio locks,
//! then the file's bindings lock, then KVM's `mmu_lock` (both inside [`GmemFile`]).
//!
//! The bindings lock is a leaf but for `mmu_lock`: nothing waits for a folio lock or for
//! `invalidate_lock` while holding it. Faults do not take it (the slot proves the binding, see
//! [`GmemFile`]); punch-hole and release zap under it and drop it before they truncate;
//! memory errors, which arrive with the folio locked, take it alone (and not `invalidate_lock`,
//! which truncation holds while it waits for folio locks). A punch racing with a fault is
//! caught by KVM's invalidation sequence: the fault retries. Lockdep cannot see folio locks;
//! this order is the one that holds on every path.

use kernel::{
    fs::{
        falloc::{KEEP_SIZE, PUNCH_HOLE},
        File,
    },
    kvm::{
        BackendTable, GmemBackend, GmemFault, GmemFile, GmemPopulate, Kvm, Registration,
        GUEST_MEMFD_FLAG_INIT_SHARED, GUEST_MEMFD_FLAG_MMAP, GUEST_MEMFD_FLAG_NO_DIRECT_MAP,
        GUEST_MEMFD_FLAG_WRITE,
    },
    mm::{
        self,
        filemap::{
            AddressSpace, AddressSpaceOperations, AopsTable, FreedFolio, MemoryFailure, PageCache,
            GFP_HIGHUSER,
        },
        folio::{Folio, LockedFolio},
        page_aligned,
        virt::VmFault,
    },
    prelude::*,
    sync::{Arc, ArcBorrow},
};

module! {
    type: GmemRsModule,
    name: "gmem_rs",
    author: "gmem-rs developers",
    description: "KVM guest_memfd backend in Rust",
    license: "GPL",
}

const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;
/// gmem-rs's own creation flag (uapi `linux/kvm.h`): the file's memory comes in PMD-sized
/// folios (2 MiB on x86-64) where the allocator has them, and KVM maps them whole.
const GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD: u64 =
    kernel::bindings::GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD as u64;
/// Pages in a PMD-sized folio.
const PMD_PAGES: u64 = 1 << mm::PMD_ORDER;
/// Folios that `fallocate()` allocates between two checks for signals and rescheduling.
const RESCHED_EVERY: u32 = 8;

/// A file of this backend.
type Gmem = GmemFile<GmemRs>;

static TABLE: BackendTable<GmemRs> = BackendTable::new();
static AOPS: AopsTable<GmemAops> = AopsTable::new();

/// Whether the file's memory comes in PMD-sized folios.
fn is_huge(gmem: &Gmem) -> bool {
    gmem.flags() & GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD != 0
}

/// Where a file of `npages` pages stops taking PMD-sized folios: the end of its last whole
/// PMD-aligned block if it is huge (a huge file's tail past it gets 4 KiB folios), else 0.
#[inline]
fn huge_end(gmem: &Gmem, npages: u64) -> u64 {
    if is_huge(gmem) {
        npages & !(PMD_PAGES - 1)
    } else {
        0
    }
}

/// The order of a new folio at page `index` of a file whose huge blocks end at `huge_end`.
#[inline]
fn folio_order(huge_end: u64, index: u64) -> u32 {
    if index < huge_end {
        mm::PMD_ORDER
    } else {
        0
    }
}

/// The file's size in pages.
#[inline]
fn npages(file: &File) -> u64 {
    file.inode().size() as u64 >> PAGE_SHIFT
}

/// The folio holding page `index` of `file`, locked, allocated with the file's NUMA policy if
/// new (as it is: a write fills it); `EHWPOISON` if the page is poisoned. Inlined into each
/// caller: out of line, it costs a fault a call.
#[inline(always)]
fn grab(gmem: &Gmem, file: &File, index: u64) -> Result<LockedFolio> {
    // The size is an atomic load: read only for huge files.
    let order = if is_huge(gmem) {
        folio_order(huge_end(gmem, npages(file)), index)
    } else {
        0
    };
    let folio = gmem
        .page_cache(file)?
        .grab_folio(index, Some(gmem.policy()), order)?;
    if folio.page_hwpoison(index) {
        return Err(EHWPOISON);
    }
    Ok(folio)
}

/// [`grab`] for a fault of the guest or of the host: zeroed, then `prepare`d, on first use, so
/// that nobody sees stale data.
#[inline]
fn folio_in_use(
    gmem: &Gmem,
    file: &File,
    index: u64,
    prepare: impl FnOnce(&LockedFolio) -> Result,
) -> Result<LockedFolio> {
    let folio = grab(gmem, file, index)?;
    folio.init_once(prepare)?;
    Ok(folio)
}

fn allocate(gmem: &Gmem, cache: &PageCache<GmemAops>, size: i64, offset: u64, len: u64) -> Result {
    // The size is fixed: allocating past it is an error, as in 6.12.
    if offset + len > size as u64 {
        return Err(EINVAL);
    }
    let _inval = cache.invalidate_lock_shared();
    let end = (offset + len) >> PAGE_SHIFT;
    let mut index = offset >> PAGE_SHIFT;
    // Once, not per page: reading `current` is an out-of-line helper call (3% of the profile
    // when it was in the loop).
    let task = kernel::current!();
    // Signals and rescheduling every few folios: each check is a helper call from Rust, and
    // per 4 KiB folio the two made allocation 3% slower than C (counted under QEMU -icount).
    // A signal still stops the loop within 8 folios.
    // Read once: the loop's calls would make the compiler read them again for each page.
    let (policy, huge_end) = (
        Some(gmem.policy()),
        huge_end(gmem, size as u64 >> PAGE_SHIFT),
    );
    let mut folios = 0u32;
    while index < end {
        if folios % RESCHED_EVERY == 0 {
            if task.signal_pending() {
                return Err(EINTR);
            }
            mm::cond_resched();
        }
        index = cache.populate_folio(index, policy, folio_order(huge_end, index))?;
        folios = folios.wrapping_add(1);
    }
    Ok(())
}

struct GmemAops;

#[vtable]
impl AddressSpaceOperations for GmemAops {
    type Private = Arc<Gmem>;

    fn table() -> &'static AopsTable<Self> {
        &AOPS
    }

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
            gmem.invalidate(start, start + (1 << folio.order()), || ());
        }
        Ok(MemoryFailure::Delayed)
    }

    fn free_folio(folio: &FreedFolio) {
        kernel::kvm::arch_invalidate(folio);
    }
}

struct GmemRs;

#[vtable]
impl GmemBackend for GmemRs {
    const OWNER: &'static ThisModule = &THIS_MODULE;
    type Aops = GmemAops;

    fn table() -> &'static BackendTable<Self> {
        &TABLE
    }

    fn supported_flags(kvm: Option<&Kvm>) -> u64 {
        // As the built-in backend; `kernel::kvm` drops what a VM may not have (all four where
        // the arch prepares its memory, `INIT_SHARED` and `WRITE` where it has private memory,
        // `NO_DIRECT_MAP` where the direct map cannot change), whatever a backend says.
        let flags = GUEST_MEMFD_FLAG_MMAP
            | GUEST_MEMFD_FLAG_INIT_SHARED
            | GUEST_MEMFD_FLAG_NO_DIRECT_MAP
            | GUEST_MEMFD_FLAG_WRITE;
        // Huge folios need THP's page cache. Not for a VM whose memory the arch prepares
        // (SEV-SNP): a punch that cannot split a folio zeroes the range in place, and a page
        // the hardware still assigns to the guest cannot be written by the host. Decided per
        // VM, so a kernel with SEV support still offers them to every other VM.
        if cfg!(CONFIG_TRANSPARENT_HUGEPAGE) && !kvm.is_some_and(|kvm| kvm.prepares_memory()) {
            flags | GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD
        } else {
            flags
        }
    }

    fn create(kvm: &Kvm, size: u64, flags: u64) -> Result<u32> {
        // The size is a positive loff_t in whole pages; `GmemFile::create` checks the flags.
        if size == 0 || size > i64::MAX as u64 || !page_aligned(size) {
            return Err(EINVAL);
        }
        // Any size: a huge file's tail past its last whole 2 MiB gets 4 KiB folios
        // (`folio_order`). The VMM maps a huge folio with one PMD only while all of its
        // pages are shared (`kernel::kvm`'s fault), otherwise a page at a time.
        let huge = flags & GUEST_MEMFD_FLAG_GMEM_RS_HUGE_PMD != 0;
        Gmem::create(kvm, size, flags, |file, _gmem| {
            file.set_gfp_mask(GFP_HIGHUSER);
            file.set_inaccessible();
            if huge {
                file.set_max_folio_order(mm::PMD_ORDER);
                if file.inode().mapping().max_folio_order() < mm::PMD_ORDER {
                    return Err(EINVAL);
                }
            }
            if !file.inode().mapping().is_unevictable() {
                pr_warn!("inaccessible mapping is not unevictable\n");
            }
            Ok(())
        })
    }

    fn fallocate(gmem: &Gmem, file: &File, mode: i32, offset: i64, len: i64) -> Result {
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
        let cache = gmem.page_cache(file)?;
        if mode & PUNCH_HOLE != 0 {
            // The guest's mappings of the range (rounded to the folios it may cut) go first,
            // so it never maps a page being freed.
            gmem.punch_hole(file, offset >> PAGE_SHIFT, (offset + len) >> PAGE_SHIFT)?;
        } else {
            allocate(gmem, cache, file.inode().size(), offset, len)?;
        }
        // As in 6.12, a failure to update the timestamps is not the caller's error.
        let _ = file.modified();
        Ok(())
    }

    // Inlined into the trampoline: one call frame less per fault.
    #[inline]
    fn fault_user(
        gmem: &Gmem,
        file: &File,
        index: u64,
    ) -> core::result::Result<LockedFolio, VmFault> {
        // Shared files belong to VMs without private memory: nothing to prepare for a guest.
        // A poisoned folio's `EHWPOISON` becomes the memory-error signal.
        Ok(folio_in_use(gmem, file, index, |_| Ok(()))?)
    }

    #[inline]
    fn write_folio(gmem: &Gmem, file: &File, index: u64) -> Result<LockedFolio> {
        grab(gmem, file, index)
    }

    // Inlined into the trampoline: one call frame less per fault.
    #[inline]
    fn get_pfn(gmem: &Gmem, fault: &GmemFault<'_>) -> Result<(LockedFolio, u32)> {
        let folio = folio_in_use(gmem, fault.file(), fault.index(), |folio| {
            fault.prepare(folio)
        })?;
        let order = fault.map_order(&folio);
        Ok((folio, order))
    }

    fn populate(gmem: &Gmem, populate: &GmemPopulate<'_>) -> Result<u64> {
        let cache = gmem.page_cache(populate.file())?;
        let huge_end = huge_end(gmem, npages(populate.file()));
        let task = kernel::current!();
        let mut done = 0u64;
        while done < populate.npages() {
            if task.signal_pending() {
                return if done == 0 { Err(EINTR) } else { Ok(done) };
            }
            let step = (|| -> Result<u64> {
                let index = populate.index(done);
                // A huge folio only where the call fills all of it.
                let whole = index % PMD_PAGES == 0 && populate.is_private(done, PMD_PAGES);
                let order = if whole {
                    folio_order(huge_end, index)
                } else {
                    0
                };
                let mut folio = cache.grab_folio(index, Some(gmem.policy()), order)?;
                if folio.page_hwpoison(index) {
                    return Err(EHWPOISON);
                }
                if folio.test_uptodate() {
                    return Err(EEXIST);
                }
                let nr = 1u64 << folio.order();
                if nr > 1
                    && (folio.index() != index
                        || !populate.is_private(done, nr)
                        || folio.contains_hwpoison())
                {
                    // Populated a page at a time, each uptodate alone (and a poisoned one
                    // refused): the folio is not uptodate, so no one maps it, and only a
                    // racing fault's reference (which it drops once it has the lock and has
                    // made the folio uptodate: then `EEXIST`, as in 6.12) or a lack of memory
                    // stops the split. Either way the page is looked up again.
                    return match folio.split() {
                        Err(e) if e != EAGAIN => Err(e),
                        _ => Ok(0),
                    };
                }
                populate.fill(done, folio)
            })();
            match step {
                Ok(0) => mm::cond_resched(),
                Ok(nr) => done += nr,
                Err(e) => return if done == 0 { Err(e) } else { Ok(done) },
            }
        }
        Ok(done)
    }
}

struct GmemRsModule {
    _registration: Registration<GmemRs>,
}

impl kernel::Module for GmemRsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::new()?;
        pr_info!("guest_memfd backend registered\n");
        Ok(Self {
            _registration: registration,
        })
    }
}
