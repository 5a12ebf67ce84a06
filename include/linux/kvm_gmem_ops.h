/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pluggable guest_memfd backends.
 *
 * A module registers a backend; while it is registered, KVM_CREATE_GUEST_MEMFD
 * creates the backend's files. Memslots bound to a backend's file are served
 * by that backend (get_pfn, populate, unbind) until they are unbound, whatever
 * is registered by then; files of KVM's built-in guest_memfd keep being served
 * by it. A module reference is held for every binding.
 *
 * The header is kept free of kvm_host.h so that Rust bindings can use it:
 * memslots and VMs are opaque, reached through the accessors below.
 */
#ifndef __LINUX_KVM_GMEM_OPS_H
#define __LINUX_KVM_GMEM_OPS_H

#include <linux/fs.h>
#include <linux/types.h>
#include <uapi/linux/kvm.h>

struct file;
struct kvm;
struct kvm_gfn_range;
struct kvm_memory_slot;
struct module;

typedef int (*kvm_gmem_populate_fn)(struct kvm *kvm, u64 gfn, u64 pfn,
				    void __user *src, int order, void *opaque);

struct kvm_gmem_ops {
	struct module *owner;
	/*
	 * The file operations of the backend's files, which are recognised
	 * by their address: in here, so that one static object is the
	 * backend's identity.
	 */
	const struct file_operations fops;

	/*
	 * KVM_CAP_GUEST_MEMFD_FLAGS: the GUEST_MEMFD_FLAG_* that create
	 * accepts for @kvm (NULL: for some VM). NULL: none.
	 */
	u64 (*supported_flags)(struct kvm *kvm);
	/* KVM_CREATE_GUEST_MEMFD: return a new fd, or -errno. */
	int (*create)(struct kvm *kvm, u64 size, u64 flags);
	/*
	 * Bind @slot (new, not yet visible) to @file at @offset; called with
	 * kvm->slots_lock held and a reference on @file.
	 */
	int (*bind)(struct kvm *kvm, struct kvm_memory_slot *slot,
		    struct file *file, u64 offset);
	/* Undo bind; called with kvm->slots_lock held. */
	void (*unbind)(struct kvm_memory_slot *slot);
	/* Private fault: the pfn backing @gfn, and its order; may sleep. */
	int (*get_pfn)(struct kvm *kvm, struct kvm_memory_slot *slot, u64 gfn,
		       u64 *pfn, int *max_order);
	/* kvm_gmem_populate() for a slot of this backend. */
	long (*populate)(struct kvm *kvm, struct kvm_memory_slot *slot,
			 u64 gfn, void __user *src, long npages,
			 kvm_gmem_populate_fn post_populate, void *opaque);
	/*
	 * kvm.gmem_in_place_conversion: whether the pages of @slot's file that
	 * gfns [@start, @end) of @slot are bound to are all private (@private)
	 * or all shared. May be called in atomic context. NULL: the backend
	 * does not convert, and its pages are all private.
	 */
	bool (*range_has_attr)(struct kvm_memory_slot *slot, u64 start, u64 end, bool private);
};

int kvm_gmem_register_ops(const struct kvm_gmem_ops *ops);
void kvm_gmem_unregister_ops(const struct kvm_gmem_ops *ops);

/* Memslot accessors. */
u64 kvm_gmem_slot_base_gfn(const struct kvm_memory_slot *slot);
unsigned long kvm_gmem_slot_npages(const struct kvm_memory_slot *slot);
unsigned long kvm_gmem_slot_pgoff(const struct kvm_memory_slot *slot);
/*
 * Publish (@file non-NULL) or clear the slot's guest_memfd binding; on
 * publishing a new slot, @gmem_only (@file has GUEST_MEMFD_FLAG_MMAP) makes
 * KVM serve all its faults, shared ones too, from the file.
 */
void kvm_gmem_slot_set_file(struct kvm_memory_slot *slot, struct file *file,
			    unsigned long pgoff, bool gmem_only);
/* KVM_CAP_GUEST_MEMFD_FLAGS's rule: whether @kvm has private memory. */
bool kvm_gmem_vm_has_private_mem(struct kvm *kvm);
/*
 * Whether the arch prepares @kvm's private memory before the guest uses it
 * (SEV-SNP): the host may then never map or write that memory.
 */
bool kvm_gmem_vm_prepares_memory(struct kvm *kvm);
bool kvm_gmem_no_direct_map_supported(void);
/* kvm.gmem_in_place_conversion: guest_memfds hold their memory attributes. */
bool kvm_gmem_in_place_conversion(void);
void kvm_gmem_invalidate_pfn_caches(struct kvm *kvm, const struct kvm_gfn_range *range);
/* A reference on the slot's file, or NULL if it is closed or closing. */
struct file *kvm_gmem_slot_get_file(struct kvm_memory_slot *slot);
/*
 * For a fault: a reference on the slot's file and, in *@index, the page of
 * it that @gfn is bound to; ERR_PTR(-EFAULT) if the file is closed or
 * closing, ERR_PTR(-EIO) if @gfn is outside the slot. One call where a
 * module would otherwise make four.
 */
struct file *kvm_gmem_slot_get_file_index(struct kvm_memory_slot *slot,
					  u64 gfn, unsigned long *index);
/* The slot's file, without a reference: for unbind, under kvm->slots_lock. */
struct file *kvm_gmem_slot_file(struct kvm_memory_slot *slot);

/* VM: its refcount (from kvm_host.h), kvm->slots_lock, and the memory attributes. */
void kvm_get_kvm(struct kvm *kvm);
void kvm_put_kvm(struct kvm *kvm);
void kvm_gmem_slots_lock(struct kvm *kvm);
void kvm_gmem_slots_unlock(struct kvm *kvm);
bool kvm_gmem_range_is_private(struct kvm *kvm, u64 start_gfn, u64 end_gfn);

/*
 * Invalidation of pgoffs [start, end) of a file bound to @slots: begin takes
 * mmu_lock once, starts an MMU invalidation, zaps the private mappings of the
 * overlap with each slot and flushes; end finishes the invalidation. Every
 * begin is followed by exactly one end; end touches no slot, so the
 * bindings may change in between.
 */
void kvm_gmem_zap_begin(struct kvm *kvm,
			struct kvm_memory_slot *const *slots,
			unsigned long nr_slots,
			unsigned long start, unsigned long end);
/*
 * Zaps one more slot bound to the file inside an invalidation begun by
 * kvm_gmem_zap_begin(): lets a caller walk its bindings without copying
 * them into an array (no allocation on the punch path).
 */
void kvm_gmem_zap_more(struct kvm *kvm, struct kvm_memory_slot *slot,
		       unsigned long start, unsigned long end);
void kvm_gmem_zap_end(struct kvm *kvm);

/* The arch hooks guest_memfd calls (no-ops where the arch has none). */
int kvm_gmem_arch_prepare(struct kvm *kvm, u64 gfn, u64 pfn, int order);
void kvm_gmem_arch_invalidate(u64 start_pfn, u64 end_pfn);

#endif /* __LINUX_KVM_GMEM_OPS_H */
