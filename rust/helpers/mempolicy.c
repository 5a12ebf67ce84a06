// SPDX-License-Identifier: GPL-2.0

#include <linux/mempolicy.h>
#include <linux/pagemap.h>

/*
 * A file's shared policy (mbind() on its mappings sets it), with no policy of
 * the mount's to start from.
 */
void rust_helper_shared_policy_init(struct shared_policy *sp)
{
	mpol_shared_policy_init(sp, NULL);
}

void rust_helper_shared_policy_free(struct shared_policy *sp)
{
	mpol_free_shared_policy(sp);
}

#ifdef CONFIG_NUMA
/* A vm_operations set_policy: @mpol for the pages of the file @vma maps. */
int rust_helper_shared_policy_set(struct shared_policy *sp,
				  struct vm_area_struct *vma,
				  struct mempolicy *mpol)
{
	return mpol_set_shared_policy(sp, vma, mpol);
}

/*
 * A vm_operations get_policy: the policy of the file's page at @addr of
 * @vma, referenced, or NULL where none was set.
 */
struct mempolicy *rust_helper_shared_policy_lookup_vma(struct shared_policy *sp,
						       struct vm_area_struct *vma,
						       unsigned long addr)
{
	return mpol_shared_policy_lookup(sp, linear_page_index(vma, addr));
}
#endif
