/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memfile_notifier: the interface between a memory backing store (a file
 * whose pages hold guest memory) and the consumers of that memory (KVM).
 *
 * A backing store registers; each of its files has a memfile_node. A
 * consumer registers a notifier on a file, is told through it when a range
 * of the file is invalidated, and takes pfns through the store. The core is
 * written in Rust (rust/kernel/memfile.rs); see
 * Documentation/mm/memfile_notifier.rst.
 */
#ifndef _LINUX_MEMFILE_NOTIFIER_H
#define _LINUX_MEMFILE_NOTIFIER_H

#include <linux/errno.h>
#include <linux/types.h>

struct file;
struct module;

/* What a consumer requires of a file's memory. */
#define MEMFILE_F_USER_INACCESSIBLE	0x1UL	/* no read, write or mmap */
#define MEMFILE_F_UNMOVABLE		0x2UL	/* pages never migrate */
#define MEMFILE_F_UNRECLAIMABLE		0x4UL	/* pages never swapped */
#define MEMFILE_F_ALLOWED_MASK		(MEMFILE_F_USER_INACCESSIBLE | \
					 MEMFILE_F_UNMOVABLE | \
					 MEMFILE_F_UNRECLAIMABLE)

/* Maximum number of backing stores registered at once. */
#define MEMFILE_MAX_BACKING_STORES	8

struct memfile_notifier;
/* One per file of a backing store: its notifiers. Opaque, owned by the core. */
struct memfile_node;

struct memfile_notifier_ops {
	/*
	 * Pages [start, end) of the file are about to go away: stop using
	 * them, and do not map them again until invalidate_end. May sleep.
	 */
	void (*invalidate_begin)(struct memfile_notifier *notifier,
				 pgoff_t start, pgoff_t end);
	/* The pages are gone; the range may be used again. */
	void (*invalidate_end)(struct memfile_notifier *notifier,
			       pgoff_t start, pgoff_t end);
	/*
	 * Pages [start, end) have a memory error: stop using them now; the
	 * store hands them out no more (-EHWPOISON) until they are punched.
	 * Called with a folio of the range locked, maybe inside an
	 * invalidation, and with whatever lock the store takes to find its
	 * node (MFD_INACCESSIBLE: the mapping's i_mmap_rwsem, read): must
	 * not punch the file or take those locks. May sleep.
	 */
	void (*memory_error)(struct memfile_notifier *notifier,
			     pgoff_t start, pgoff_t end);
};

/* Embedded in the consumer's own structure. */
struct memfile_notifier {
	const struct memfile_notifier_ops *ops;
	/*
	 * Set by the consumer before it registers: the pages [start, end) it
	 * uses as its own (private memory has one user: no other notifier on
	 * the file may overlap them; empty claims nothing), and who it is
	 * (every notifier on a file has the same owner, e.g. one VM).
	 */
	pgoff_t start, end;
	const void *owner;
	/* Set by memfile_register_notifier(); private to the core. */
	const struct memfile_backing_store *bs;
	struct memfile_node *node;
	struct file *file;
};

struct memfile_backing_store {
	/*
	 * The store's module: each registered notifier on one of its files
	 * holds a reference on it, so the store outlives the notifiers.
	 */
	struct module *owner;
	/* MEMFILE_F_* that every file of this store provides. */
	unsigned long flags;
	/*
	 * The node of @file if it belongs to this store, else NULL; the node
	 * lives as long as the file. Called in an SRCU read-side section;
	 * may sleep.
	 */
	struct memfile_node *(*lookup_node)(struct file *file);
	/*
	 * A referenced pfn for page @offset of @file, allocating it if it is
	 * a hole, and the order of the folio it sits in, aligned so that the
	 * whole 2^order range belongs to the file at the same offset.
	 */
	int (*get_pfn)(struct file *file, pgoff_t offset, unsigned long *pfn,
		       int *order);
	/* Drop the reference get_pfn took. */
	void (*put_pfn)(unsigned long pfn);
};

#ifdef CONFIG_MEMFILE_NOTIFIER

/* -EINVAL if ops are missing, -EEXIST if registered, -ENOSPC if full. */
int memfile_register_backing_store(const struct memfile_backing_store *bs);
/*
 * No new notifier can be registered on the store's files after this
 * returns; notifiers already registered stay valid (they pin the store's
 * module).
 */
void memfile_unregister_backing_store(const struct memfile_backing_store *bs);

/* For the store: a node for a new file (NULL on -ENOMEM), and its end. */
struct memfile_node *memfile_node_alloc(void);
/* The file is gone: no notifier may be left on the node. */
void memfile_node_free(struct memfile_node *node);

/*
 * For the store: every notifier on @node gets invalidate_begin(start, end)
 * now and invalidate_end(start, end) at the matching end call, which must
 * follow. Invalidations of one node are serialized, and notifiers are not
 * added or removed between begin and end.
 */
void memfile_invalidate_begin(struct memfile_node *node, pgoff_t start,
			      pgoff_t end);
void memfile_invalidate_end(struct memfile_node *node, pgoff_t start,
			    pgoff_t end);

/*
 * For the store: a memory error in pages [start, end) of @node's file, whose
 * folio the caller holds locked; every notifier's memory_error runs now,
 * without waiting for an invalidation in flight.
 */
void memfile_memory_error(struct memfile_node *node, pgoff_t start,
			  pgoff_t end);

/*
 * For the consumer: register @notifier (with ->ops set) on @file, requiring
 * @flags. -EOPNOTSUPP if no backing store claims @file; -EINVAL if @flags
 * has unknown bits, asks for more than the store provides, or differs from
 * the flags of notifiers already on the file, or if @notifier's range
 * overlaps another's on the file or its owner differs from theirs;
 * -ENOMEM. The consumer keeps a reference on @file until it unregisters.
 */
int memfile_register_notifier(struct file *file, unsigned long flags,
			      struct memfile_notifier *notifier);
/* Once this returns, no callback of @notifier runs or is running. */
void memfile_unregister_notifier(struct memfile_notifier *notifier);

/* Through the store of a registered notifier; see memfile_backing_store. */
int memfile_get_pfn(struct memfile_notifier *notifier, pgoff_t offset,
		    unsigned long *pfn, int *order);
void memfile_put_pfn(struct memfile_notifier *notifier, unsigned long pfn);

/* Internal to the core (mm/memfile_notifier.c, for rust/kernel/memfile.rs). */
void memfile_stores_lock(void);
void memfile_stores_unlock(void);
int memfile_srcu_read_lock(void);
void memfile_srcu_read_unlock(int idx);
void memfile_srcu_synchronize(void);

#else /* !CONFIG_MEMFILE_NOTIFIER */

static inline int memfile_register_notifier(struct file *file,
					    unsigned long flags,
					    struct memfile_notifier *notifier)
{
	return -EOPNOTSUPP;
}

#endif /* CONFIG_MEMFILE_NOTIFIER */

#endif /* _LINUX_MEMFILE_NOTIFIER_H */
