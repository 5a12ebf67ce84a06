// SPDX-License-Identifier: GPL-2.0
/*
 * memfile_notifier: the state of the core (rust/kernel/memfile.rs) that
 * belongs to mm rather than to the Rust code that uses it: the lock that
 * serializes registration of backing stores, and the SRCU domain their
 * lookups run in (a store's lookup may sleep).
 */
#include <linux/memfile_notifier.h>
#include <linux/mutex.h>
#include <linux/srcu.h>

static DEFINE_MUTEX(memfile_stores_mutex);
DEFINE_STATIC_SRCU(memfile_srcu);

void memfile_stores_lock(void)
{
	mutex_lock(&memfile_stores_mutex);
}

void memfile_stores_unlock(void)
{
	mutex_unlock(&memfile_stores_mutex);
}

int memfile_srcu_read_lock(void)
{
	return srcu_read_lock(&memfile_srcu);
}

void memfile_srcu_read_unlock(int idx)
{
	srcu_read_unlock(&memfile_srcu, idx);
}

void memfile_srcu_synchronize(void)
{
	synchronize_srcu(&memfile_srcu);
}
