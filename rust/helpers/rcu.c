// SPDX-License-Identifier: GPL-2.0

#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/srcu.h>

void rust_helper_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rust_helper_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/*
 * The memfile_notifier core (rust/kernel/memfile.rs): the lock that
 * serializes registration of backing stores, and the SRCU domain their
 * lookups run in (a store's lookup may sleep).
 */
static DEFINE_MUTEX(memfile_stores_lock);
DEFINE_STATIC_SRCU(memfile_srcu);

void rust_helper_memfile_stores_lock(void)
{
	mutex_lock(&memfile_stores_lock);
}

void rust_helper_memfile_stores_unlock(void)
{
	mutex_unlock(&memfile_stores_lock);
}

int rust_helper_memfile_srcu_read_lock(void)
{
	return srcu_read_lock(&memfile_srcu);
}

void rust_helper_memfile_srcu_read_unlock(int idx)
{
	srcu_read_unlock(&memfile_srcu, idx);
}

void rust_helper_memfile_srcu_synchronize(void)
{
	synchronize_srcu(&memfile_srcu);
}
