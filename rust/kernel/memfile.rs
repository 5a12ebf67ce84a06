// SPDX-License-Identifier: GPL-2.0

//! memfile_notifier: backing stores of guest memory and their consumers.
//!
//! This is the core itself, not a wrapper: C reaches it through the functions declared in
//! [`include/linux/memfile_notifier.h`](srctree/include/linux/memfile_notifier.h), which are
//! defined here, and Rust backing stores use [`BackingStore`], [`Node`] and [`Registration`].
//!
//! Stores sit in a fixed table of atomic pointers, changed under a mutex and read under SRCU
//! by the (rare) lookups of notifier registration. A file's notifiers sit in its [`Node`],
//! behind a mutex. An invalidation marks the node busy from begin to end; registration and
//! unregistration wait for it to be idle, so no notifier ever sees an end without its begin,
//! and none is called after it is gone.

use crate::ffi::{c_int, c_ulong};
use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings, c_str,
    error::{code::*, Result},
    fs::File,
    macros::export,
    mm::folio::LockedFolio,
    prelude::*,
    static_lock_class,
    static_table::StaticTable,
    str::CStr,
    sync::{
        lock::{mutex::MutexBackend, Guard},
        CondVar, Mutex,
    },
};
use core::{
    marker::PhantomData,
    pin::Pin,
    ptr::{self, null_mut},
    sync::atomic::{AtomicPtr, Ordering},
};

/// `MEMFILE_F_USER_INACCESSIBLE`: userspace cannot read, write or map the file.
pub const F_USER_INACCESSIBLE: usize = bindings::MEMFILE_F_USER_INACCESSIBLE as usize;
/// `MEMFILE_F_UNMOVABLE`: the file's pages are never migrated.
pub const F_UNMOVABLE: usize = bindings::MEMFILE_F_UNMOVABLE as usize;
/// `MEMFILE_F_UNRECLAIMABLE`: the file's pages are never swapped or reclaimed.
pub const F_UNRECLAIMABLE: usize = bindings::MEMFILE_F_UNRECLAIMABLE as usize;
const F_ALLOWED: usize = F_USER_INACCESSIBLE | F_UNMOVABLE | F_UNRECLAIMABLE;

const MAX_STORES: usize = bindings::MEMFILE_MAX_BACKING_STORES as usize;
#[allow(clippy::declare_interior_mutable_const)]
const NO_STORE: AtomicPtr<bindings::memfile_backing_store> = AtomicPtr::new(null_mut());
/// The registered stores; a slot is published with `Release` and read under SRCU.
static STORES: [AtomicPtr<bindings::memfile_backing_store>; MAX_STORES] = [NO_STORE; MAX_STORES];

/// A registered notifier, as the node keeps it.
#[derive(Clone, Copy, PartialEq)]
struct NotifierPtr(*mut bindings::memfile_notifier);

// SAFETY: The pointee is the consumer's, valid from registration to unregistration on any CPU;
// the node only hands it to its callbacks.
unsafe impl Send for NotifierPtr {}

struct NodeInner {
    notifiers: KVec<NotifierPtr>,
    /// The flags every notifier registered with; meaningless while there are none.
    flags: usize,
    /// Between an invalidation's begin and its end.
    invalidating: bool,
}

/// The notifiers of one file of a backing store (`struct memfile_node`).
///
/// A Rust store embeds it in the file's state; a C store gets one from `memfile_node_alloc`.
#[pin_data]
pub struct Node {
    #[pin]
    inner: Mutex<NodeInner>,
    /// Signalled when an invalidation ends.
    #[pin]
    idle: CondVar,
}

impl Node {
    /// A node with no notifiers.
    pub fn new() -> impl PinInit<Self> {
        // Statics, so that a node made in a module has the same lockdep names (by address) as
        // one made here, whatever gets inlined where.
        static INNER: &CStr = c_str!("memfile_node::inner");
        static IDLE: &CStr = c_str!("memfile_node::idle");
        pin_init!(Self {
            inner <- Mutex::new(
                NodeInner {
                    notifiers: KVec::new(),
                    flags: 0,
                    invalidating: false,
                },
                INNER,
                static_lock_class!()
            ),
            idle <- CondVar::new(IDLE, static_lock_class!()),
        })
    }

    fn as_raw(&self) -> *mut bindings::memfile_node {
        ptr::from_ref(self).cast_mut().cast()
    }

    /// # Safety
    ///
    /// `ptr` points to a live [`Node`] for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::memfile_node) -> &'a Node {
        // SAFETY: Per the function's safety requirement.
        unsafe { &*ptr.cast::<Node>() }
    }

    /// Whether a consumer has a notifier on the file.
    pub fn has_notifiers(&self) -> bool {
        !self.inner.lock().notifiers.is_empty()
    }

    /// Invalidates pages `[start, end)` of the node's file while `f` runs: every notifier gets
    /// its begin before and its end after. `f` frees the pages, with the [`Invalidation`] as
    /// proof. A closure, not a guard, so that no end can be skipped (a guard can be leaked
    /// with `mem::forget`, which would leave the node busy and every later registration and
    /// invalidation waiting forever).
    pub fn invalidate<R>(&self, start: u64, end: u64, f: impl FnOnce(&Invalidation<'_>) -> R) -> R {
        let (start, end) = (start as c_ulong, end as c_ulong);
        self.begin(start, end);
        let r = f(&Invalidation {
            node: self,
            start,
            end,
        });
        self.end(start, end);
        r
    }

    /// A memory error in pages `[start, end)`: every notifier stops using them, now. Unlike
    /// [`Node::invalidate`] it does not wait for an invalidation in flight (the caller holds a
    /// folio lock, which such an invalidation may be waiting for); the notifiers cannot change
    /// while the lock is held.
    pub fn memory_error(&self, start: u64, end: u64) {
        let inner = self.inner.lock();
        for n in inner.notifiers.as_slice() {
            // SAFETY: A notifier in the list is registered, so it and its ops are valid.
            unsafe {
                if let Some(f) = (*(*n.0).ops).memory_error {
                    f(n.0, start as c_ulong, end as c_ulong);
                }
            }
        }
    }

    fn begin(&self, start: c_ulong, end: c_ulong) {
        let mut inner = self.lock_idle();
        inner.invalidating = true;
        for n in inner.notifiers.as_slice() {
            // SAFETY: A notifier in the list is registered, so it and its ops are valid.
            unsafe {
                if let Some(f) = (*(*n.0).ops).invalidate_begin {
                    f(n.0, start, end);
                }
            }
        }
    }

    fn end(&self, start: c_ulong, end: c_ulong) {
        let mut inner = self.inner.lock();
        if !inner.invalidating {
            crate::pr_warn!("memfile: invalidate_end without begin\n");
            return;
        }
        for n in inner.notifiers.as_slice() {
            // SAFETY: As in `begin`; the list has not changed since then (`invalidating`).
            unsafe {
                if let Some(f) = (*(*n.0).ops).invalidate_end {
                    f(n.0, start, end);
                }
            }
        }
        inner.invalidating = false;
        drop(inner);
        self.idle.notify_all();
    }

    /// Waits out an invalidation in flight and returns the locked node.
    fn lock_idle(&self) -> Guard<'_, NodeInner, MutexBackend> {
        let mut inner = self.inner.lock();
        while inner.invalidating {
            self.idle.wait(&mut inner);
        }
        inner
    }

    fn add(&self, n: NotifierPtr, flags: usize) -> Result {
        let mut inner = self.lock_idle();
        if !inner.notifiers.is_empty() && inner.flags != flags {
            return Err(EINVAL);
        }
        // SAFETY: `n` is being registered and those in the list are registered: all valid.
        let conflicts = |m: &NotifierPtr| unsafe { conflict(&*n.0, &*m.0) };
        if inner.notifiers.iter().any(conflicts) {
            return Err(EINVAL);
        }
        inner.notifiers.push(n, GFP_KERNEL)?;
        inner.flags = flags;
        Ok(())
    }

    fn remove(&self, n: NotifierPtr) {
        let mut inner = self.lock_idle();
        let len = inner.notifiers.len();
        let Some(i) = inner.notifiers.as_slice().iter().position(|&p| p == n) else {
            crate::pr_warn!("memfile: unregistering a notifier that is not registered\n");
            return;
        };
        inner.notifiers.as_mut_slice()[i..].rotate_left(1);
        // SAFETY: The element past the new length was moved there by the rotation; it is `Copy`
        // and has nothing to drop.
        unsafe { inner.notifiers.set_len(len - 1) };
    }
}

/// Whether two notifiers may not share a file: their owners differ, or their claimed ranges
/// overlap (see the C header).
fn conflict(a: &bindings::memfile_notifier, b: &bindings::memfile_notifier) -> bool {
    a.owner != b.owner || (a.start < a.end && b.start < b.end && a.start < b.end && b.start < a.end)
}

/// An invalidation in progress, which [`Node::invalidate`] ends when its closure returns.
pub struct Invalidation<'a> {
    node: &'a Node,
    start: c_ulong,
    end: c_ulong,
}

impl Invalidation<'_> {
    /// Whether this invalidates pages `[start, end)` of `file`: the node is `file`'s.
    pub fn covers(&self, file: &File, start: u64, end: u64) -> bool {
        let Some((_, node)) = lookup(file.as_ptr(), |_| true) else {
            return false;
        };
        ptr::eq(node, self.node.as_raw())
            && self.start as u64 <= start
            && start <= end
            && end <= self.end as u64
    }
}

/// The store whose `lookup_node` claims `file`, and that node, if `keep` (run on the store
/// while it is still published) agrees.
fn lookup(
    file: *mut bindings::file,
    keep: impl FnOnce(*const bindings::memfile_backing_store) -> bool,
) -> Option<(
    *const bindings::memfile_backing_store,
    *mut bindings::memfile_node,
)> {
    // SAFETY: No preconditions. Lookups run in an SRCU read-side section (a store's lookup may
    // sleep), which unregistration waits for.
    let idx = unsafe { bindings::memfile_srcu_read_lock() };
    let mut found = None;
    for slot in &STORES {
        let bs = slot.load(Ordering::Acquire);
        if bs.is_null() {
            continue;
        }
        // SAFETY: A published store stays valid until unregistered, which waits for this
        // read-side section after unpublishing it; registration checked that `lookup_node`
        // is set.
        let node = unsafe { ((*bs).lookup_node.unwrap_unchecked())(file) };
        if !node.is_null() {
            if keep(bs) {
                found = Some((bs.cast_const(), node));
            }
            break;
        }
    }
    // SAFETY: Ends the section begun above.
    unsafe { bindings::memfile_srcu_read_unlock(idx) };
    found
}

/// Holds the lock that serializes store registration and unregistration.
struct StoresGuard(crate::types::NotThreadSafe);

impl StoresGuard {
    fn lock() -> Self {
        // SAFETY: No preconditions; a sleeping lock, taken in process context.
        unsafe { bindings::memfile_stores_lock() };
        Self(crate::types::NotThreadSafe)
    }
}

impl Drop for StoresGuard {
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock (it was taken in `lock`).
        unsafe { bindings::memfile_stores_unlock() };
    }
}

/// Registers `bs`; see the C header.
///
/// # Safety
///
/// `bs` stays valid until `memfile_unregister_backing_store` and as long as any file it claims
/// exists.
#[export]
pub unsafe extern "C" fn memfile_register_backing_store(
    bs: *const bindings::memfile_backing_store,
) -> c_int {
    // SAFETY: The caller passes a valid store.
    let s = unsafe { &*bs };
    if s.lookup_node.is_none() || s.get_pfn.is_none() || s.put_pfn.is_none() {
        return EINVAL.to_errno();
    }
    let bs = bs.cast_mut();
    // Lookups read the table without the lock; changes to it are serialized.
    let _guard = StoresGuard::lock();
    if STORES.iter().any(|slot| slot.load(Ordering::Relaxed) == bs) {
        return EEXIST.to_errno();
    }
    match STORES
        .iter()
        .find(|slot| slot.load(Ordering::Relaxed).is_null())
    {
        Some(slot) => {
            slot.store(bs, Ordering::Release);
            0
        }
        None => ENOSPC.to_errno(),
    }
}

/// Unregisters `bs`; see the C header.
///
/// # Safety
///
/// `bs` was registered with `memfile_register_backing_store`.
#[export]
pub unsafe extern "C" fn memfile_unregister_backing_store(
    bs: *const bindings::memfile_backing_store,
) {
    let guard = StoresGuard::lock();
    if let Some(slot) = STORES
        .iter()
        .find(|slot| slot.load(Ordering::Relaxed) == bs.cast_mut())
    {
        slot.store(null_mut(), Ordering::Release);
        drop(guard);
        // SAFETY: No preconditions; waits for lookups that may still see `bs`.
        unsafe { bindings::memfile_srcu_synchronize() };
        return;
    }
    crate::pr_warn!("memfile: unregistering a backing store that is not registered\n");
}

/// A node for a C store's new file, or NULL; see the C header.
#[export]
pub extern "C" fn memfile_node_alloc() -> *mut bindings::memfile_node {
    match KBox::pin_init(Node::new(), GFP_KERNEL) {
        // SAFETY: The node is never moved out of its allocation: `memfile_node_free` frees it
        // in place.
        Ok(node) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(node) }).cast(),
        Err(_) => null_mut(),
    }
}

/// Frees a node from `memfile_node_alloc`; see the C header.
///
/// # Safety
///
/// `node` came from `memfile_node_alloc` and is not used after this.
#[export]
pub unsafe extern "C" fn memfile_node_free(node: *mut bindings::memfile_node) {
    if node.is_null() {
        return;
    }
    // SAFETY: Per the function's safety requirement.
    let node = unsafe { KBox::from_raw(node.cast::<Node>()) };
    if node.has_notifiers() {
        crate::pr_warn!("memfile: node freed with notifiers registered\n");
    }
}

/// Begins an invalidation; see the C header.
///
/// # Safety
///
/// `node` is live, and `memfile_invalidate_end` follows.
#[export]
pub unsafe extern "C" fn memfile_invalidate_begin(
    node: *mut bindings::memfile_node,
    start: c_ulong,
    end: c_ulong,
) {
    // SAFETY: Per the function's safety requirement.
    unsafe { Node::from_raw(node) }.begin(start, end);
}

/// Ends an invalidation; see the C header.
///
/// # Safety
///
/// `node` is live, and `memfile_invalidate_begin` preceded.
#[export]
pub unsafe extern "C" fn memfile_invalidate_end(
    node: *mut bindings::memfile_node,
    start: c_ulong,
    end: c_ulong,
) {
    // SAFETY: Per the function's safety requirement.
    unsafe { Node::from_raw(node) }.end(start, end);
}

/// Reports a memory error; see the C header.
///
/// # Safety
///
/// `node` is live.
#[export]
pub unsafe extern "C" fn memfile_memory_error(
    node: *mut bindings::memfile_node,
    start: c_ulong,
    end: c_ulong,
) {
    // SAFETY: Per the function's safety requirement.
    unsafe { Node::from_raw(node) }.memory_error(start as u64, end as u64);
}

/// Registers a consumer's notifier on `file`; see the C header.
///
/// # Safety
///
/// `file` is referenced by the caller until it unregisters; `notifier` is valid with `ops` set,
/// not registered, and stays valid until `memfile_unregister_notifier` returns.
#[export]
pub unsafe extern "C" fn memfile_register_notifier(
    file: *mut bindings::file,
    flags: c_ulong,
    notifier: *mut bindings::memfile_notifier,
) -> c_int {
    if flags & !F_ALLOWED != 0 {
        return EINVAL.to_errno();
    }
    // The notifier pins the store's module, taken while the store is still published.
    let found = lookup(file, |bs| {
        // SAFETY: `bs` is published, so valid (see `lookup`).
        unsafe { bindings::try_module_get((*bs).owner) }
    });
    let Some((bs, node)) = found else {
        return EOPNOTSUPP.to_errno();
    };
    // SAFETY: The reference taken above keeps the store's module, and so the store.
    let (store_flags, owner) = unsafe { ((*bs).flags, (*bs).owner) };
    if flags & !store_flags != 0 {
        // SAFETY: Drops the reference taken above.
        unsafe { bindings::module_put(owner) };
        return EINVAL.to_errno();
    }
    // SAFETY: The caller owns the unregistered notifier; it is published by `add` below.
    unsafe {
        (*notifier).bs = bs;
        (*notifier).node = node;
        (*notifier).file = file;
    }
    // SAFETY: The node lives as long as the file (a rule of `lookup_node`), which the caller
    // holds.
    match unsafe { Node::from_raw(node) }.add(NotifierPtr(notifier), flags) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: Drops the reference taken above: the notifier was not registered.
            unsafe { bindings::module_put(owner) };
            e.to_errno()
        }
    }
}

/// Unregisters a notifier; see the C header.
///
/// # Safety
///
/// `notifier` was registered and its file is still referenced by the caller.
#[export]
pub unsafe extern "C" fn memfile_unregister_notifier(notifier: *mut bindings::memfile_notifier) {
    // SAFETY: A registered notifier's node lives as long as its file, which the caller holds.
    unsafe { Node::from_raw((*notifier).node) }.remove(NotifierPtr(notifier));
    // SAFETY: Registration took a reference on the store's module, which kept the store; it is
    // read before the reference is dropped.
    unsafe { bindings::module_put((*(*notifier).bs).owner) };
}

/// A pfn through the notifier's store; see the C header.
///
/// # Safety
///
/// `notifier` is registered; `pfn` and `order` are valid for writes.
#[export]
pub unsafe extern "C" fn memfile_get_pfn(
    notifier: *mut bindings::memfile_notifier,
    offset: c_ulong,
    pfn: *mut c_ulong,
    order: *mut c_int,
) -> c_int {
    // SAFETY: A registered notifier's store is valid while its file exists (the file pins it)
    // and registration checked that `get_pfn` is set.
    unsafe { ((*(*notifier).bs).get_pfn.unwrap_unchecked())((*notifier).file, offset, pfn, order) }
}

/// Drops a pfn reference; see the C header.
///
/// # Safety
///
/// `notifier` is registered and `pfn` came from `memfile_get_pfn` on it.
#[export]
pub unsafe extern "C" fn memfile_put_pfn(notifier: *mut bindings::memfile_notifier, pfn: c_ulong) {
    // SAFETY: As in `memfile_get_pfn`.
    unsafe { ((*(*notifier).bs).put_pfn.unwrap_unchecked())(pfn) }
}

/// A backing store written in Rust.
pub trait BackingStore: Sized + 'static {
    /// `MEMFILE_F_*` that every file of the store provides.
    const FLAGS: usize;

    /// The store's module: every registered notifier on one of its files pins it.
    const OWNER: &'static crate::ThisModule;

    /// The store's table (`static STORE: StoreTable<Self> = StoreTable::new();`).
    fn table() -> &'static StoreTable<Self>;

    /// The node of `file` if the file is one of the store's. May sleep.
    fn lookup_node(file: &File) -> Option<&Node>;

    /// The folio holding page `offset` of `file` (one of the store's), allocated if it is a
    /// hole, locked and referenced. The consumer gets the page's pfn with the reference, and
    /// the folio's order; `memfile_put_pfn` drops the reference.
    fn get_folio(file: &File, offset: u64) -> Result<LockedFolio>;
}

struct StoreVtable<T: BackingStore>(PhantomData<T>);

impl<T: BackingStore> StoreVtable<T> {
    /// # Safety
    ///
    /// `file` is a valid file, referenced for the call.
    unsafe extern "C" fn lookup_node(file: *mut bindings::file) -> *mut bindings::memfile_node {
        // SAFETY: Per the function's safety requirement.
        let file = unsafe { File::from_raw_file(file) };
        T::lookup_node(file).map_or(null_mut(), Node::as_raw)
    }

    /// # Safety
    ///
    /// `file` is one of the store's files, referenced for the call; `pfn` and `order` are valid
    /// for writes.
    unsafe extern "C" fn get_pfn(
        file: *mut bindings::file,
        offset: c_ulong,
        pfn: *mut c_ulong,
        order: *mut c_int,
    ) -> c_int {
        // SAFETY: Per the function's safety requirement.
        let file = unsafe { File::from_raw_file(file) };
        let index = offset as u64;
        let folio = match T::get_folio(file, index) {
            Ok(folio) => folio,
            Err(e) => return e.to_errno(),
        };
        let span = folio.span();
        if !span.holds(file.inode().mapping(), index) {
            crate::pr_warn!("memfile: backing store returned a folio of another page\n");
            return EFAULT.to_errno();
        }
        let o = span.order();
        let p = match folio.into_page_pfn(index) {
            Ok(p) => p,
            Err(e) => return e.to_errno(),
        };
        // SAFETY: Per the function's safety requirement.
        unsafe {
            *pfn = p as c_ulong;
            *order = o as c_int;
        }
        0
    }

    /// # Safety
    ///
    /// `pfn` came from `get_pfn` of this store, and its reference is given up here.
    unsafe extern "C" fn put_pfn(pfn: c_ulong) {
        // SAFETY: `get_pfn` handed out the page with a reference on its folio, which the
        // caller gives back.
        unsafe { bindings::put_page(bindings::pfn_to_page(pfn as _)) };
    }

    const VTABLE: bindings::memfile_backing_store = bindings::memfile_backing_store {
        owner: T::OWNER.as_ptr(),
        flags: T::FLAGS as c_ulong,
        lookup_node: Some(Self::lookup_node),
        get_pfn: Some(Self::get_pfn),
        put_pfn: Some(Self::put_pfn),
    };
}

/// A Rust store's `struct memfile_backing_store`, in a `static` of its module: the store is
/// known by its address.
pub type StoreTable<T> = StaticTable<bindings::memfile_backing_store, T>;

impl<T: BackingStore> StoreTable<T> {
    /// `T`'s table.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        // SAFETY: `VTABLE` holds `T`'s trampolines, `T::OWNER` and `T::FLAGS` only.
        unsafe { Self::from_raw(StoreVtable::<T>::VTABLE) }
    }
}

/// The registration of a Rust backing store; dropping it unregisters the store.
///
/// # Invariants
///
/// `table` is registered.
pub struct Registration<T: BackingStore> {
    table: &'static StoreTable<T>,
}

impl<T: BackingStore> Registration<T> {
    /// Registers `T`.
    pub fn new() -> Result<Self> {
        let table = T::table();
        // SAFETY: The table is `'static`; notifiers on the files of `T` pin its module.
        let r = unsafe { memfile_register_backing_store(table.as_raw()) };
        crate::error::to_result(r)?;
        // INVARIANT: Registered just now.
        Ok(Self { table })
    }
}

impl<T: BackingStore> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `table` is registered (type invariant): the very pointer `new` passed.
        unsafe { memfile_unregister_backing_store(self.table.as_raw()) };
    }
}
