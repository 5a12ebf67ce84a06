// SPDX-License-Identifier: GPL-2.0
/*
 * Private memory from memfile backing stores (such as memfd_create() with
 * MFD_INACCESSIBLE): a memslot bound to such a file is served through the
 * memfile notifier, with the guest_memfd slot fields and uAPI.
 *
 * A binding holds a reference on the file and a notifier on it; a punched
 * hole zaps the slot's private mappings of the range, and faults retry until
 * the punch is over. The VM is not pinned by the file: instead, the bindings
 * of a dying VM are dropped before its MMU is torn down.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_gmem_ops.h>
#include <linux/kvm_host.h>
#include <linux/memfile_notifier.h>
#include <linux/slab.h>

#include "kvm_mm.h"

struct kvm_memfile_binding {
	struct memfile_notifier notifier;
	struct kvm *kvm;
	struct kvm_memory_slot *slot;
	/* The current invalidation overlapped the slot (serialized per file). */
	bool zapping;
};

static struct kvm_memfile_binding *to_binding(struct memfile_notifier *n)
{
	return container_of(n, struct kvm_memfile_binding, notifier);
}

/* Whether file pages [start, end) overlap the pages bound to the slot. */
static bool kvm_memfile_overlaps(struct kvm_memory_slot *slot, pgoff_t start,
				 pgoff_t end)
{
	pgoff_t pgoff = slot->gmem.pgoff;

	return max(start, pgoff) < min(end, pgoff + slot->npages);
}

static void kvm_memfile_invalidate_begin(struct memfile_notifier *n,
					 pgoff_t start, pgoff_t end)
{
	struct kvm_memfile_binding *b = to_binding(n);

	b->zapping = kvm_memfile_overlaps(b->slot, start, end);
	if (b->zapping)
		kvm_gmem_zap_begin(b->kvm, &b->slot, 1, start, end);
}

static void kvm_memfile_invalidate_end(struct memfile_notifier *n,
				       pgoff_t start, pgoff_t end)
{
	struct kvm_memfile_binding *b = to_binding(n);

	if (b->zapping)
		kvm_gmem_zap_end(b->kvm);
	b->zapping = false;
}

/*
 * As guest_memfd on a memory error: zap the pages from the guest; the next
 * fault gets -EHWPOISON from the store. A begin/end of its own, which nests
 * in a punch's invalidation if one is in flight.
 */
static void kvm_memfile_memory_error(struct memfile_notifier *n,
				     pgoff_t start, pgoff_t end)
{
	struct kvm_memfile_binding *b = to_binding(n);

	if (!kvm_memfile_overlaps(b->slot, start, end))
		return;
	kvm_gmem_zap_begin(b->kvm, &b->slot, 1, start, end);
	kvm_gmem_zap_end(b->kvm);
}

static const struct memfile_notifier_ops kvm_memfile_notifier_ops = {
	.invalidate_begin = kvm_memfile_invalidate_begin,
	.invalidate_end = kvm_memfile_invalidate_end,
	.memory_error = kvm_memfile_memory_error,
};

/* Private memory must be out of userspace's and reclaim's reach. */
#define KVM_MEMFILE_FLAGS	MEMFILE_F_ALLOWED_MASK

static void kvm_memfile_unbind(struct kvm_memory_slot *slot)
{
	struct kvm_memfile_binding *b = slot->gmem.priv;
	struct file *file = slot->gmem.file;

	if (!b)
		return;
	/* Waits out a punch in flight, which may still zap this slot. */
	memfile_unregister_notifier(&b->notifier);
	kvm_gmem_slot_set_file(slot, NULL, 0, false);
	slot->gmem.priv = NULL;
	fput(file);
	kfree(b);
}

static int kvm_memfile_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot,
			       u64 gfn, u64 *pfn, int *max_order)
{
	struct kvm_memfile_binding *b = slot->gmem.priv;
	unsigned long p;
	int order, r;

	if (!b)
		return -EFAULT;
	r = memfile_get_pfn(&b->notifier, gfn - slot->base_gfn + slot->gmem.pgoff,
			    &p, &order);
	if (r)
		return r;
	/*
	 * The store's reference is a page reference, which KVM drops with
	 * kvm_release_pfn_clean() once the pfn is mapped.
	 */
	*pfn = p;
	if (max_order)
		*max_order = 0;
	return 0;
}

static long kvm_memfile_populate(struct kvm *kvm, struct kvm_memory_slot *slot,
				 u64 gfn, void __user *src, long npages,
				 kvm_gmem_populate_fn post_populate,
				 void *opaque)
{
	/* Only SEV-SNP and TDX populate, and they do not take these files. */
	return -EOPNOTSUPP;
}

/* Bound by kvm_memfile_gmem_bind(), which guest_memfd.c calls directly. */
static const struct kvm_gmem_ops kvm_memfile_gmem_ops = {
	.unbind = kvm_memfile_unbind,
	.get_pfn = kvm_memfile_get_pfn,
	.populate = kvm_memfile_populate,
};

/* Bind @slot to a memfile store's @file; as kvm_gmem_ops.bind. */
int kvm_memfile_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
			  struct file *file, u64 offset)
{
	loff_t size = i_size_read(file_inode(file));
	pgoff_t pgoff = offset >> PAGE_SHIFT;
	struct kvm_memfile_binding *b;
	int r;

	if (offset > (u64)size || slot->npages > ((u64)size - offset) >> PAGE_SHIFT)
		return -EINVAL;
	/* Stores do not run the arch's preparation of private memory (SEV-SNP). */
	if (kvm_gmem_vm_prepares_memory(kvm))
		return -EINVAL;

	b = kzalloc(sizeof(*b), GFP_KERNEL_ACCOUNT);
	if (!b)
		return -ENOMEM;
	b->notifier.ops = &kvm_memfile_notifier_ops;
	/* As guest_memfd: one VM per file, no two slots on the same pages. */
	b->notifier.start = pgoff;
	b->notifier.end = pgoff + slot->npages;
	b->notifier.owner = kvm;
	b->kvm = kvm;
	b->slot = slot;
	/* Published before the notifier: an invalidation may come at once. */
	slot->gmem.pgoff = pgoff;

	r = memfile_register_notifier(file, KVM_MEMFILE_FLAGS, &b->notifier);
	if (r) {
		kfree(b);
		/* Not a file any store serves: as for any non-guest_memfd fd. */
		return r == -EOPNOTSUPP ? -EINVAL : r;
	}
	get_file(file);
	slot->gmem.priv = b;
	slot->gmem.ops = &kvm_memfile_gmem_ops;
	kvm_gmem_slot_set_file(slot, file, pgoff, false);
	return 0;
}

/*
 * The VM is going away (no users left): drop its memfile bindings while its
 * MMU can still be zapped, so a punch racing with the teardown never touches
 * a dead MMU. The memslots are freed later; their unbind finds nothing.
 */
void kvm_memfile_gmem_vm_destroy(struct kvm *kvm)
{
	struct kvm_memory_slot *slot;
	int i, bkt;

	for (i = 0; i < kvm_arch_nr_memslot_as_ids(kvm); i++) {
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, i)) {
			if (slot->gmem.ops == &kvm_memfile_gmem_ops)
				kvm_gmem_unbind(slot);
		}
	}
}
