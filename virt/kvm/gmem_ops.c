// SPDX-License-Identifier: GPL-2.0
/*
 * Pluggable guest_memfd backends: the registration and the narrow set of
 * KVM helpers a backend module needs. See include/linux/kvm_gmem_ops.h.
 */
#include <linux/kvm_gmem_ops.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/set_memory.h>

#include "kvm_mm.h"

static DEFINE_MUTEX(kvm_gmem_ops_lock);
static const struct kvm_gmem_ops *kvm_gmem_ops_registered;

int kvm_gmem_register_ops(const struct kvm_gmem_ops *ops)
{
	int r = 0;

	if (!ops->fops.release || !ops->create || !ops->bind || !ops->unbind ||
	    !ops->get_pfn || !ops->populate)
		return -EINVAL;

	mutex_lock(&kvm_gmem_ops_lock);
	if (kvm_gmem_ops_registered)
		r = -EBUSY;
	else
		kvm_gmem_ops_registered = ops;
	mutex_unlock(&kvm_gmem_ops_lock);
	return r;
}
EXPORT_SYMBOL_GPL(kvm_gmem_register_ops);

void kvm_gmem_unregister_ops(const struct kvm_gmem_ops *ops)
{
	mutex_lock(&kvm_gmem_ops_lock);
	if (!WARN_ON_ONCE(kvm_gmem_ops_registered != ops))
		kvm_gmem_ops_registered = NULL;
	mutex_unlock(&kvm_gmem_ops_lock);
}
EXPORT_SYMBOL_GPL(kvm_gmem_unregister_ops);

/*
 * The registered backend, with a reference on its module, if it is
 * registered and, when @file is given, @file is one of its files.
 */
const struct kvm_gmem_ops *kvm_gmem_ops_get(struct file *file)
{
	const struct kvm_gmem_ops *ops;

	mutex_lock(&kvm_gmem_ops_lock);
	ops = kvm_gmem_ops_registered;
	if (ops && ((file && file->f_op != &ops->fops) || !try_module_get(ops->owner)))
		ops = NULL;
	mutex_unlock(&kvm_gmem_ops_lock);
	return ops;
}

void kvm_gmem_ops_put(const struct kvm_gmem_ops *ops)
{
	module_put(ops->owner);
}

u64 kvm_gmem_slot_base_gfn(const struct kvm_memory_slot *slot)
{
	return slot->base_gfn;
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_base_gfn);

unsigned long kvm_gmem_slot_npages(const struct kvm_memory_slot *slot)
{
	return slot->npages;
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_npages);

unsigned long kvm_gmem_slot_pgoff(const struct kvm_memory_slot *slot)
{
	return slot->gmem.pgoff;
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_pgoff);

void kvm_gmem_slot_set_file(struct kvm_memory_slot *slot, struct file *file,
			    unsigned long pgoff, bool gmem_only)
{
	if (file) {
		slot->gmem.pgoff = pgoff;
		/* The slot is not visible yet: nothing reads its flags. */
		if (gmem_only)
			slot->flags |= KVM_MEMSLOT_GMEM_ONLY;
	}
	WRITE_ONCE(slot->gmem.file, file);
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_set_file);

struct file *kvm_gmem_slot_get_file(struct kvm_memory_slot *slot)
{
	return get_file_active(&slot->gmem.file);
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_get_file);

struct file *kvm_gmem_slot_get_file_index(struct kvm_memory_slot *slot,
					  u64 gfn, unsigned long *index)
{
	struct file *file = get_file_active(&slot->gmem.file);

	if (!file)
		return ERR_PTR(-EFAULT);
	if (gfn < slot->base_gfn || gfn - slot->base_gfn >= slot->npages) {
		fput(file);
		return ERR_PTR(-EIO);
	}
	*index = gfn - slot->base_gfn + slot->gmem.pgoff;
	return file;
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_get_file_index);

struct file *kvm_gmem_slot_file(struct kvm_memory_slot *slot)
{
	return READ_ONCE(slot->gmem.file);
}
EXPORT_SYMBOL_GPL(kvm_gmem_slot_file);

void kvm_gmem_slots_lock(struct kvm *kvm)
{
	mutex_lock(&kvm->slots_lock);
}
EXPORT_SYMBOL_GPL(kvm_gmem_slots_lock);

void kvm_gmem_slots_unlock(struct kvm *kvm)
{
	mutex_unlock(&kvm->slots_lock);
}
EXPORT_SYMBOL_GPL(kvm_gmem_slots_unlock);

bool kvm_gmem_vm_has_private_mem(struct kvm *kvm)
{
	return kvm_arch_has_private_mem(kvm);
}
EXPORT_SYMBOL_GPL(kvm_gmem_vm_has_private_mem);

bool kvm_gmem_vm_prepares_memory(struct kvm *kvm)
{
#if defined(CONFIG_HAVE_KVM_ARCH_GMEM_PREPARE) && defined(CONFIG_X86)
	/* sev_gmem_prepare() acts on SEV-SNP VMs only. */
	return kvm->arch.vm_type == KVM_X86_SNP_VM;
#elif defined(CONFIG_HAVE_KVM_ARCH_GMEM_PREPARE)
	return kvm_arch_has_private_mem(kvm);
#else
	return false;
#endif
}
EXPORT_SYMBOL_GPL(kvm_gmem_vm_prepares_memory);

/*
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP: where mm/direct_map.c is built (x86-64).
 * Never for a VM whose memory the arch prepares (SEV-SNP writes its pages
 * through the direct map): callers refuse such VMs every mapping flag.
 */
bool kvm_gmem_no_direct_map_supported(void)
{
	return IS_ENABLED(CONFIG_X86_64) && can_set_direct_map();
}
EXPORT_SYMBOL_GPL(kvm_gmem_no_direct_map_supported);

bool kvm_gmem_range_is_private(struct kvm *kvm, u64 start_gfn, u64 end_gfn)
{
	return kvm_range_has_memory_attributes(kvm, start_gfn, end_gfn,
					       KVM_MEMORY_ATTRIBUTE_PRIVATE,
					       KVM_MEMORY_ATTRIBUTE_PRIVATE);
}
EXPORT_SYMBOL_GPL(kvm_gmem_range_is_private);

/*
 * guest_memfd invalidation of @range (after kvm_mmu_invalidate_begin()):
 * the pfn caches of its gfns, whose pages come from the file in a
 * guest_memfd-only slot, whatever the VMM maps at their addresses.
 */
void kvm_gmem_invalidate_pfn_caches(struct kvm *kvm, const struct kvm_gfn_range *range)
{
	gfn_to_pfn_cache_invalidate_start(kvm, __gfn_to_hva_memslot(range->slot, range->start),
					  __gfn_to_hva_memslot(range->slot, range->end));
}

/*
 * Zaps the mappings of pgoffs [start, end) of @slot that come from its file:
 * the private ones, and the shared ones too if the slot is guest_memfd-only;
 * mmu_lock held.
 */
static bool kvm_gmem_zap_slot(struct kvm *kvm, struct kvm_memory_slot *slot,
			      unsigned long start, unsigned long end)
{
	pgoff_t pgoff = slot->gmem.pgoff;
	struct kvm_gfn_range range = {
		.start = slot->base_gfn + max(pgoff, start) - pgoff,
		.end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,
		.slot = slot,
		.may_block = true,
		.attr_filter = kvm_gmem_invalidate_filter(slot),
	};

	if (WARN_ON_ONCE(range.start >= range.end))
		return false;
	kvm_gmem_invalidate_pfn_caches(kvm, &range);
	return kvm_mmu_unmap_gfn_range(kvm, &range);
}

void kvm_gmem_zap_begin(struct kvm *kvm, struct kvm_memory_slot *const *slots,
			unsigned long nr_slots, unsigned long start,
			unsigned long end)
{
	bool flush = false;
	unsigned long i;

	if (WARN_ON_ONCE(!nr_slots))
		return;

	/* Begin and the first range must be under one hold of mmu_lock. */
	KVM_MMU_LOCK(kvm);
	kvm_mmu_invalidate_begin(kvm);
	for (i = 0; i < nr_slots; i++)
		flush |= kvm_gmem_zap_slot(kvm, slots[i], start, end);
	if (flush)
		kvm_flush_remote_tlbs(kvm);
	KVM_MMU_UNLOCK(kvm);
}
EXPORT_SYMBOL_GPL(kvm_gmem_zap_begin);

void kvm_gmem_zap_more(struct kvm *kvm, struct kvm_memory_slot *slot,
		       unsigned long start, unsigned long end)
{
	KVM_MMU_LOCK(kvm);
	if (kvm_gmem_zap_slot(kvm, slot, start, end))
		kvm_flush_remote_tlbs(kvm);
	KVM_MMU_UNLOCK(kvm);
}
EXPORT_SYMBOL_GPL(kvm_gmem_zap_more);

void kvm_gmem_zap_end(struct kvm *kvm)
{
	KVM_MMU_LOCK(kvm);
	kvm_mmu_invalidate_end(kvm);
	KVM_MMU_UNLOCK(kvm);
}
EXPORT_SYMBOL_GPL(kvm_gmem_zap_end);

int kvm_gmem_arch_prepare(struct kvm *kvm, u64 gfn, u64 pfn, int order)
{
#ifdef CONFIG_HAVE_KVM_ARCH_GMEM_PREPARE
	return kvm_arch_gmem_prepare(kvm, gfn, pfn, order);
#else
	return 0;
#endif
}
EXPORT_SYMBOL_GPL(kvm_gmem_arch_prepare);

void kvm_gmem_arch_invalidate(u64 start_pfn, u64 end_pfn)
{
#ifdef CONFIG_HAVE_KVM_ARCH_GMEM_INVALIDATE
	kvm_arch_gmem_invalidate(start_pfn, end_pfn);
#endif
}
EXPORT_SYMBOL_GPL(kvm_gmem_arch_invalidate);
