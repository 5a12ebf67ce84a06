// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the memfile_notifier core, through its C API only.
 *
 * The fake backing stores claim bare struct file allocations, which the core
 * never dereferences (a zeroed one is also harmless to a real store's
 * lookup_node, e.g. one that compares f_op). The notifiers log their calls.
 * Everything a test registers is undone by a KUnit action, so a failed
 * assertion leaves no store, notifier, node or kthread behind.
 */

#include <kunit/test.h>
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/memfile_notifier.h>
#include <linux/module.h>
#include <linux/sched/task.h>
#include <linux/spinlock.h>

#define MFT_FILES	2
#define MFT_LOG		16
#define MFT_PFN_BASE	0x1000UL
#define MFT_BAD_OFFSET	7	/* the fake get_pfn fails here */
#define MFT_TIMEOUT	msecs_to_jiffies(10000)

struct mft_notifier;

/* One notifier callback, as logged. */
struct mft_call {
	struct mft_notifier *who;
	bool begin;
	pgoff_t start;
	pgoff_t end;
};

/* An invalidation run by a kthread, held between its begin and end. */
struct mft_inval {
	struct memfile_node *node;
	pgoff_t start;
	pgoff_t end;
	struct completion begun;
	struct completion go;
	bool end_done;
	struct task_struct *task;
};

struct mft_ctx {
	struct file *files[MFT_FILES];	/* claimed by the fake stores */
	struct memfile_node *nodes[MFT_FILES];
	struct file *stray;		/* claimed by no store */

	spinlock_t lock;		/* callbacks may run in a kthread */
	struct mft_call log[MFT_LOG];
	int nr_log;			/* may exceed MFT_LOG: checked */

	/* What the store's get_pfn was last asked, and put_pfn last given. */
	int nr_get;
	struct file *get_file;
	pgoff_t get_offset;
	int nr_put;
	unsigned long put_pfn;

	struct mft_inval inval;
};

struct mft_notifier {
	struct memfile_notifier n;
	struct mft_ctx *ctx;
};

/* Store callbacks get no context argument: they find the test's here. */
static struct mft_ctx *mft_cur;

/* Called under rcu_read_lock(): pointer compares only. */
static struct memfile_node *mft_lookup_node(struct file *file)
{
	struct mft_ctx *ctx = READ_ONCE(mft_cur);
	int i;

	if (!ctx)
		return NULL;
	for (i = 0; i < MFT_FILES; i++)
		if (ctx->files[i] == file)
			return ctx->nodes[i];
	return NULL;
}

static int mft_get_pfn(struct file *file, pgoff_t offset, unsigned long *pfn,
		       int *order)
{
	struct mft_ctx *ctx = READ_ONCE(mft_cur);

	if (!ctx)
		return -ENODEV;
	ctx->nr_get++;
	ctx->get_file = file;
	ctx->get_offset = offset;
	if (offset == MFT_BAD_OFFSET)
		return -ENOENT;
	*pfn = MFT_PFN_BASE + offset;
	*order = 0;
	return 0;
}

static void mft_put_pfn(unsigned long pfn)
{
	struct mft_ctx *ctx = READ_ONCE(mft_cur);

	if (!ctx)
		return;
	ctx->nr_put++;
	ctx->put_pfn = pfn;
}

#define MFT_STORE(f, l, g, p) { \
	.owner = THIS_MODULE, .flags = (f), .lookup_node = (l), .get_pfn = (g), \
	.put_pfn = (p) }

static const struct memfile_backing_store mft_store =
	MFT_STORE(MEMFILE_F_ALLOWED_MASK, mft_lookup_node, mft_get_pfn,
		  mft_put_pfn);
static const struct memfile_backing_store mft_store_lacking =
	MFT_STORE(MEMFILE_F_ALLOWED_MASK & ~MEMFILE_F_UNRECLAIMABLE,
		  mft_lookup_node, mft_get_pfn, mft_put_pfn);
static const struct memfile_backing_store mft_store_no_lookup =
	MFT_STORE(0, NULL, mft_get_pfn, mft_put_pfn);
static const struct memfile_backing_store mft_store_no_get =
	MFT_STORE(0, mft_lookup_node, NULL, mft_put_pfn);
static const struct memfile_backing_store mft_store_no_put =
	MFT_STORE(0, mft_lookup_node, mft_get_pfn, NULL);
/* One more than the table holds; the core tells stores apart by address. */
static const struct memfile_backing_store
mft_many[MEMFILE_MAX_BACKING_STORES + 1] = {
	[0 ... MEMFILE_MAX_BACKING_STORES] =
		MFT_STORE(0, mft_lookup_node, mft_get_pfn, mft_put_pfn),
};

static void mft_log(struct memfile_notifier *n, bool begin, pgoff_t start,
		    pgoff_t end)
{
	struct mft_notifier *mn = container_of(n, struct mft_notifier, n);
	struct mft_ctx *ctx = mn->ctx;

	spin_lock(&ctx->lock);
	if (ctx->nr_log < MFT_LOG)
		ctx->log[ctx->nr_log] = (struct mft_call){
			.who = mn, .begin = begin, .start = start, .end = end,
		};
	ctx->nr_log++;
	spin_unlock(&ctx->lock);
}

static void mft_invalidate_begin(struct memfile_notifier *n, pgoff_t start,
				 pgoff_t end)
{
	mft_log(n, true, start, end);
}

static void mft_invalidate_end(struct memfile_notifier *n, pgoff_t start,
			       pgoff_t end)
{
	mft_log(n, false, start, end);
}

static const struct memfile_notifier_ops mft_ops = {
	.invalidate_begin = mft_invalidate_begin,
	.invalidate_end = mft_invalidate_end,
};

/* How many begins (or ends) @mn got. */
static int mft_count(struct mft_notifier *mn, bool begin)
{
	struct mft_ctx *ctx = mn->ctx;
	int i, nr = 0;

	spin_lock(&ctx->lock);
	for (i = 0; i < min(ctx->nr_log, MFT_LOG); i++)
		if (ctx->log[i].who == mn && ctx->log[i].begin == begin)
			nr++;
	spin_unlock(&ctx->lock);
	return nr;
}

static void mft_expect_call(struct kunit *test, int i, struct mft_notifier *who,
			    bool begin, pgoff_t start, pgoff_t end)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_call *c;

	KUNIT_ASSERT_LT(test, i, min(ctx->nr_log, MFT_LOG));
	c = &ctx->log[i];
	KUNIT_EXPECT_PTR_EQ_MSG(test, c->who, who, "call %d", i);
	KUNIT_EXPECT_EQ_MSG(test, c->begin, begin, "call %d", i);
	KUNIT_EXPECT_EQ_MSG(test, c->start, start, "call %d", i);
	KUNIT_EXPECT_EQ_MSG(test, c->end, end, "call %d", i);
}

/* Deferred actions: they undo whatever a test leaves registered. */
static void mft_act_store(void *bs)
{
	memfile_unregister_backing_store(bs);
}

static void mft_act_notifier(void *n)
{
	memfile_unregister_notifier(n);
}

static void mft_act_node(void *node)
{
	memfile_node_free(node);
}

static void mft_act_inval(void *data)
{
	struct mft_inval *iv = data;

	/* Let the kthread reach its end if the test did not. */
	complete(&iv->go);
	kthread_stop_put(iv->task);
}

static int mft_register_store(struct kunit *test,
			      const struct memfile_backing_store *bs)
{
	int ret = memfile_register_backing_store(bs);

	if (!ret)
		KUNIT_ASSERT_EQ(test,
				kunit_add_action_or_reset(test, mft_act_store, (void *)bs),
				0);
	return ret;
}

static void mft_unregister_store(struct kunit *test,
				 const struct memfile_backing_store *bs)
{
	kunit_release_action(test, mft_act_store, (void *)bs);
}

static struct mft_notifier *mft_notifier(struct kunit *test)
{
	struct mft_notifier *mn = kunit_kzalloc(test, sizeof(*mn), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, mn);
	mn->n.ops = &mft_ops;
	mn->ctx = test->priv;
	return mn;
}

static int mft_register(struct kunit *test, struct mft_notifier *mn,
			struct file *file, unsigned long flags)
{
	int ret = memfile_register_notifier(file, flags, &mn->n);

	if (!ret)
		KUNIT_ASSERT_EQ(test,
				kunit_add_action_or_reset(test, mft_act_notifier, &mn->n),
				0);
	return ret;
}

static void mft_unregister(struct kunit *test, struct mft_notifier *mn)
{
	kunit_release_action(test, mft_act_notifier, &mn->n);
}

static int mft_inval_thread(void *data)
{
	struct mft_inval *iv = data;

	memfile_invalidate_begin(iv->node, iv->start, iv->end);
	complete(&iv->begun);
	wait_for_completion(&iv->go);
	/* Time for a register/unregister that does not wait to get through. */
	msleep(50);
	memfile_invalidate_end(iv->node, iv->start, iv->end);
	WRITE_ONCE(iv->end_done, true);
	return 0;
}

/* Starts an invalidation in a kthread; returns once its begin is done. */
static void mft_inval_start(struct kunit *test, struct memfile_node *node,
			    pgoff_t start, pgoff_t end)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_inval *iv = &ctx->inval;
	struct task_struct *task;

	iv->node = node;
	iv->start = start;
	iv->end = end;
	init_completion(&iv->begun);
	init_completion(&iv->go);
	task = kthread_create(mft_inval_thread, iv, "memfile_kunit");
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, task);
	/* kthread_stop() needs the task_struct even if the thread returned. */
	get_task_struct(task);
	iv->task = task;
	KUNIT_ASSERT_EQ(test,
			kunit_add_action_or_reset(test, mft_act_inval, iv), 0);
	wake_up_process(task);
	KUNIT_ASSERT_NE(test, wait_for_completion_timeout(&iv->begun,
							  MFT_TIMEOUT), 0UL);
}

static void mft_inval_join(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;

	kunit_release_action(test, mft_act_inval, &ctx->inval);
}

struct mft_race {
	atomic_t *go;
	int ret;
	struct completion done;
};

static int mft_race_thread(void *arg)
{
	struct mft_race *r = arg;

	/* Without preemption, on one CPU, kthreadd and the setter must get to run. */
	while (!atomic_read(r->go))
		cond_resched();
	r->ret = memfile_register_backing_store(&mft_many[0]);
	complete(&r->done);
	return 0;
}

/* Two registrations of one store at once: exactly one wins, the other -EEXIST. */
static void mft_store_register_race(struct kunit *test)
{
	int round, i, wins;

	for (round = 0; round < 200; round++) {
		struct mft_race r[2];
		atomic_t go = ATOMIC_INIT(0);
		struct task_struct *t;

		for (i = 0; i < 2; i++) {
			r[i].go = &go;
			init_completion(&r[i].done);
			t = kthread_run(mft_race_thread, &r[i], "memfile_race%d", i);
			if (IS_ERR(t)) {
				atomic_set(&go, 1);
				if (i)
					wait_for_completion(&r[0].done);
				if (i && !r[0].ret)
					memfile_unregister_backing_store(&mft_many[0]);
				KUNIT_FAIL(test, "kthread_run: %ld", PTR_ERR(t));
				return;
			}
		}
		atomic_set(&go, 1);
		wait_for_completion(&r[0].done);
		wait_for_completion(&r[1].done);
		if (r[0].ret == -ENOSPC && r[1].ret == -ENOSPC)
			kunit_skip(test, "backing-store table already full");
		wins = !r[0].ret + !r[1].ret;
		for (i = 0; i < wins; i++)
			memfile_unregister_backing_store(&mft_many[0]);
		KUNIT_ASSERT_EQ_MSG(test, wins, 1, "round %d: %d and %d", round,
				    r[0].ret, r[1].ret);
		KUNIT_ASSERT_TRUE_MSG(test, r[0].ret == -EEXIST || r[1].ret == -EEXIST,
				      "round %d: %d and %d", round, r[0].ret,
				      r[1].ret);
	}
}

static void mft_store_register_errors(struct kunit *test)
{
	bool ok[MEMFILE_MAX_BACKING_STORES + 1] = {};
	bool full = false;
	int i, ret, nr;

	KUNIT_EXPECT_EQ(test, mft_register_store(test, &mft_store_no_lookup),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register_store(test, &mft_store_no_get),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register_store(test, &mft_store_no_put),
			-EINVAL);

	ret = mft_register_store(test, &mft_many[0]);
	if (ret == -ENOSPC)
		kunit_skip(test, "backing-store table already full");
	KUNIT_ASSERT_EQ(test, ret, 0);
	ok[0] = true;
	nr = 1;
	KUNIT_EXPECT_EQ(test, mft_register_store(test, &mft_many[0]), -EEXIST);

	/* Other stores (a module's) may hold slots: fill whatever is left. */
	for (i = 1; i < ARRAY_SIZE(mft_many); i++) {
		ret = mft_register_store(test, &mft_many[i]);
		if (ret == -ENOSPC) {
			full = true;
			break;
		}
		KUNIT_EXPECT_EQ_MSG(test, ret, 0, "store %d", i);
		ok[i] = !ret;
		nr += !ret;
	}
	KUNIT_EXPECT_TRUE_MSG(test, full, "no -ENOSPC after %d stores", nr);
	KUNIT_EXPECT_LE(test, nr, MEMFILE_MAX_BACKING_STORES);

	for (i = 0; i < ARRAY_SIZE(mft_many); i++)
		if (ok[i])
			mft_unregister_store(test, &mft_many[i]);
	/* Every slot they took is free again. */
	for (i = 0; i < ARRAY_SIZE(mft_many); i++) {
		if (!ok[i])
			continue;
		ret = mft_register_store(test, &mft_many[i]);
		KUNIT_EXPECT_EQ_MSG(test, ret, 0, "store %d again", i);
	}
}

static void mft_unclaimed_file(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *mn = mft_notifier(test);

	/* Our stores are not registered yet: nobody claims our files. */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test),
					   ctx->files[0], 0), -EOPNOTSUPP);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), ctx->stray,
					   0), -EOPNOTSUPP);
	KUNIT_ASSERT_EQ(test, mft_register(test, mn, ctx->files[0], 0), 0);
	KUNIT_EXPECT_PTR_EQ(test, mn->n.bs, &mft_store);
	KUNIT_EXPECT_PTR_EQ(test, mn->n.node, ctx->nodes[0]);
	KUNIT_EXPECT_PTR_EQ(test, mn->n.file, ctx->files[0]);
}

static void mft_flags(struct kunit *test)
{
	const unsigned long a = MEMFILE_F_USER_INACCESSIBLE |
				MEMFILE_F_UNMOVABLE;
	const unsigned long b = MEMFILE_F_USER_INACCESSIBLE;
	struct mft_ctx *ctx = test->priv;
	struct file *f = ctx->files[0];
	struct mft_notifier *n1 = mft_notifier(test);
	struct mft_notifier *n2 = mft_notifier(test);
	struct mft_notifier *n3 = mft_notifier(test);
	struct mft_notifier *n4 = mft_notifier(test);
	int bit, ret;

	/* Each failing registration gets a fresh notifier: it might pass. */
	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store_lacking), 0);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f,
					   MEMFILE_F_UNRECLAIMABLE), -EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f,
					   MEMFILE_F_ALLOWED_MASK), -EINVAL);
	/* What the store does provide is granted. */
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, f, MEMFILE_F_UNMOVABLE),
			0);
	mft_unregister(test, n1);
	mft_unregister_store(test, &mft_store_lacking);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	for (bit = 0; bit < BITS_PER_LONG; bit++) {
		if (BIT(bit) & MEMFILE_F_ALLOWED_MASK)
			continue;
		ret = mft_register(test, mft_notifier(test), f, BIT(bit));
		KUNIT_EXPECT_EQ_MSG(test, ret, -EINVAL, "bit %d", bit);
	}
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f,
					   MEMFILE_F_ALLOWED_MASK | BIT(BITS_PER_LONG - 1)),
			-EINVAL);

	/* The first notifier on a node sets the flags all others must use. */
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, f, a), 0);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f, b),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f,
					   MEMFILE_F_ALLOWED_MASK), -EINVAL);
	KUNIT_ASSERT_EQ(test, mft_register(test, n2, f, a), 0);
	/* Per node: another file of the store may differ. */
	KUNIT_EXPECT_EQ(test, mft_register(test, n3, ctx->files[1], b), 0);

	/* The flags hold while any notifier is left ... */
	mft_unregister(test, n1);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test), f, b),
			-EINVAL);
	/* ... and reset with the last one. */
	mft_unregister(test, n2);
	KUNIT_EXPECT_EQ(test, mft_register(test, n4, f, b), 0);
}

static struct mft_notifier *mft_claim(struct kunit *test, pgoff_t start,
				      pgoff_t end, const void *owner)
{
	struct mft_notifier *mn = mft_notifier(test);

	mn->n.start = start;
	mn->n.end = end;
	mn->n.owner = owner;
	return mn;
}

/* Claimed ranges of a file are exclusive, and a file has one owner. */
static void mft_exclusive(struct kunit *test)
{
	const unsigned long fl = MEMFILE_F_ALLOWED_MASK;
	struct mft_ctx *ctx = test->priv;
	struct file *f = ctx->files[0];
	static const int a, b;
	struct mft_notifier *first = mft_claim(test, 10, 20, &a);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, first, f, fl), 0);
	/* Overlaps at either edge, inside, around: refused. */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 5, 11, &a), f, fl), -EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 19, 30, &a), f, fl), -EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 12, 13, &a), f, fl), -EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 0, 40, &a), f, fl), -EINVAL);
	/* Adjacent ranges and empty claims share the file. */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 20, 30, &a), f, fl), 0);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 0, 10, &a), f, fl), 0);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 15, 15, &a), f, fl), 0);
	/* Another owner: refused, even on free pages or claiming none. */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 50, 60, &b), f, fl), -EINVAL);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 0, 0, &b), f, fl), -EINVAL);
	/* Per file: another file may have another owner. */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 10, 20, &b),
					   ctx->files[1], fl), 0);
	/* A claim is released with its notifier. */
	mft_unregister(test, first);
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_claim(test, 12, 18, &a), f, fl), 0);
}

static void mft_invalidate_order(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *n1 = mft_notifier(test);
	struct mft_notifier *n2 = mft_notifier(test);
	struct mft_notifier *other = mft_notifier(test);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, ctx->files[0], 0), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n2, ctx->files[0], 0), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, other, ctx->files[1], 0), 0);

	memfile_invalidate_begin(ctx->nodes[0], 16, 32);
	/* Begin alone calls no end. */
	KUNIT_EXPECT_EQ(test, ctx->nr_log, 2);
	memfile_invalidate_end(ctx->nodes[0], 16, 32);
	KUNIT_ASSERT_EQ(test, ctx->nr_log, 4);
	mft_expect_call(test, 0, n1, true, 16, 32);
	mft_expect_call(test, 1, n2, true, 16, 32);
	mft_expect_call(test, 2, n1, false, 16, 32);
	mft_expect_call(test, 3, n2, false, 16, 32);

	mft_unregister(test, n1);
	memfile_invalidate_begin(ctx->nodes[0], 0, 1);
	memfile_invalidate_end(ctx->nodes[0], 0, 1);
	KUNIT_ASSERT_EQ(test, ctx->nr_log, 6);
	mft_expect_call(test, 4, n2, true, 0, 1);
	mft_expect_call(test, 5, n2, false, 0, 1);

	/* Quiet so far, yet registered: it hears its own node. */
	memfile_invalidate_begin(ctx->nodes[1], 5, 6);
	memfile_invalidate_end(ctx->nodes[1], 5, 6);
	KUNIT_ASSERT_EQ(test, ctx->nr_log, 8);
	mft_expect_call(test, 6, other, true, 5, 6);
	mft_expect_call(test, 7, other, false, 5, 6);
}

static void mft_unregister_waits_for_invalidation(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *n1 = mft_notifier(test);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, ctx->files[0], 0), 0);

	mft_inval_start(test, ctx->nodes[0], 0, 8);
	KUNIT_EXPECT_EQ(test, mft_count(n1, true), 1);
	KUNIT_EXPECT_EQ(test, mft_count(n1, false), 0);
	/* The kthread sleeps before its end; unregistering must wait it out. */
	complete(&ctx->inval.go);
	mft_unregister(test, n1);
	KUNIT_EXPECT_EQ(test, mft_count(n1, false), 1);

	mft_inval_join(test);
	KUNIT_EXPECT_TRUE(test, READ_ONCE(ctx->inval.end_done));
	KUNIT_EXPECT_EQ(test, ctx->nr_log, 2);
}

static void mft_register_during_invalidation(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *n1 = mft_notifier(test);
	struct mft_notifier *n2 = mft_notifier(test);

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, ctx->files[0], 0), 0);

	mft_inval_start(test, ctx->nodes[0], 0, 8);
	complete(&ctx->inval.go);
	/* Blocks until the kthread's end: n2 sees neither half of it. */
	KUNIT_ASSERT_EQ(test, mft_register(test, n2, ctx->files[0], 0), 0);
	KUNIT_EXPECT_EQ(test, mft_count(n1, true), 1);
	KUNIT_EXPECT_EQ(test, mft_count(n1, false), 1);
	KUNIT_EXPECT_EQ(test, mft_count(n2, true), 0);
	KUNIT_EXPECT_EQ(test, mft_count(n2, false), 0);

	mft_inval_join(test);
	KUNIT_EXPECT_TRUE(test, READ_ONCE(ctx->inval.end_done));
	KUNIT_EXPECT_EQ(test, mft_count(n2, false), 0);

	/* From now on n2 is in every invalidation. */
	memfile_invalidate_begin(ctx->nodes[0], 8, 16);
	memfile_invalidate_end(ctx->nodes[0], 8, 16);
	KUNIT_EXPECT_EQ(test, mft_count(n1, true), 2);
	KUNIT_EXPECT_EQ(test, mft_count(n1, false), 2);
	KUNIT_EXPECT_EQ(test, mft_count(n2, true), 1);
	KUNIT_EXPECT_EQ(test, mft_count(n2, false), 1);
}

static void mft_store_going_away(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *n1 = mft_notifier(test);
	unsigned long pfn = 0;
	int order = -1;

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, ctx->files[0], 0), 0);
	mft_unregister_store(test, &mft_store);

	/* Gone for new consumers of its files ... */
	KUNIT_EXPECT_EQ(test, mft_register(test, mft_notifier(test),
					   ctx->files[0], 0), -EOPNOTSUPP);

	/* ... but not for the one it had. */
	memfile_invalidate_begin(ctx->nodes[0], 3, 5);
	memfile_invalidate_end(ctx->nodes[0], 3, 5);
	KUNIT_ASSERT_EQ(test, ctx->nr_log, 2);
	mft_expect_call(test, 0, n1, true, 3, 5);
	mft_expect_call(test, 1, n1, false, 3, 5);

	KUNIT_EXPECT_EQ(test, memfile_get_pfn(&n1->n, 2, &pfn, &order), 0);
	KUNIT_EXPECT_EQ(test, pfn, MFT_PFN_BASE + 2);
	KUNIT_EXPECT_EQ(test, order, 0);
	KUNIT_EXPECT_EQ(test, ctx->nr_get, 1);
	KUNIT_EXPECT_PTR_EQ(test, ctx->get_file, ctx->files[0]);
	memfile_put_pfn(&n1->n, pfn);
	KUNIT_EXPECT_EQ(test, ctx->nr_put, 1);
	KUNIT_EXPECT_EQ(test, ctx->put_pfn, MFT_PFN_BASE + 2);

	mft_unregister(test, n1);
	kunit_release_action(test, mft_act_node, ctx->nodes[0]);
	ctx->nodes[0] = NULL;
}

static void mft_expect_get(struct kunit *test, int nr, struct file *file,
			   pgoff_t offset)
{
	struct mft_ctx *ctx = test->priv;

	KUNIT_EXPECT_EQ(test, ctx->nr_get, nr);
	KUNIT_EXPECT_PTR_EQ(test, ctx->get_file, file);
	KUNIT_EXPECT_EQ(test, ctx->get_offset, offset);
}

static void mft_get_put_pfn(struct kunit *test)
{
	struct mft_ctx *ctx = test->priv;
	struct mft_notifier *n1 = mft_notifier(test);
	struct mft_notifier *n2 = mft_notifier(test);
	unsigned long pfn1 = 0, pfn2 = 0, pfn = 0;
	int order1 = -1, order2 = -1, order = -1;

	KUNIT_ASSERT_EQ(test, mft_register_store(test, &mft_store), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n1, ctx->files[0], 0), 0);
	KUNIT_ASSERT_EQ(test, mft_register(test, n2, ctx->files[1], 0), 0);

	/* Each notifier asks the store about its own file. */
	KUNIT_EXPECT_EQ(test, memfile_get_pfn(&n1->n, 4, &pfn1, &order1), 0);
	KUNIT_EXPECT_EQ(test, pfn1, MFT_PFN_BASE + 4);
	KUNIT_EXPECT_EQ(test, order1, 0);
	mft_expect_get(test, 1, ctx->files[0], 4);

	KUNIT_EXPECT_EQ(test, memfile_get_pfn(&n2->n, 0, &pfn2, &order2), 0);
	KUNIT_EXPECT_EQ(test, pfn2, MFT_PFN_BASE);
	KUNIT_EXPECT_EQ(test, order2, 0);
	mft_expect_get(test, 2, ctx->files[1], 0);

	/* The store's error comes back as is. */
	KUNIT_EXPECT_EQ(test, memfile_get_pfn(&n1->n, MFT_BAD_OFFSET, &pfn,
					      &order), -ENOENT);
	mft_expect_get(test, 3, ctx->files[0], MFT_BAD_OFFSET);

	memfile_put_pfn(&n1->n, pfn1);
	KUNIT_EXPECT_EQ(test, ctx->nr_put, 1);
	KUNIT_EXPECT_EQ(test, ctx->put_pfn, MFT_PFN_BASE + 4);
	memfile_put_pfn(&n2->n, pfn2);
	KUNIT_EXPECT_EQ(test, ctx->nr_put, 2);
	KUNIT_EXPECT_EQ(test, ctx->put_pfn, MFT_PFN_BASE);
}

static int mft_init(struct kunit *test)
{
	struct mft_ctx *ctx;
	int i;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx);
	spin_lock_init(&ctx->lock);
	ctx->stray = kunit_kzalloc(test, sizeof(struct file), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->stray);
	for (i = 0; i < MFT_FILES; i++) {
		ctx->files[i] = kunit_kzalloc(test, sizeof(struct file),
					      GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, ctx->files[i]);
		ctx->nodes[i] = memfile_node_alloc();
		KUNIT_ASSERT_NOT_NULL(test, ctx->nodes[i]);
		/* Added before any notifier, so run after they are gone. */
		KUNIT_ASSERT_EQ(test,
				kunit_add_action_or_reset(test, mft_act_node, ctx->nodes[i]),
				0);
	}
	test->priv = ctx;
	WRITE_ONCE(mft_cur, ctx);
	return 0;
}

static void mft_exit(struct kunit *test)
{
	WRITE_ONCE(mft_cur, NULL);
}

/* The case names are the bare ones; the functions carry the mft_ prefix. */
#define MFT_CASE(test_name) \
	{ .run_case = mft_##test_name, .name = #test_name }

static struct kunit_case mft_cases[] = {
	MFT_CASE(store_register_errors),
	MFT_CASE(store_register_race),
	MFT_CASE(unclaimed_file),
	MFT_CASE(flags),
	MFT_CASE(exclusive),
	MFT_CASE(invalidate_order),
	MFT_CASE(unregister_waits_for_invalidation),
	MFT_CASE(register_during_invalidation),
	MFT_CASE(store_going_away),
	MFT_CASE(get_put_pfn),
	{}
};

static struct kunit_suite mft_suite = {
	.name = "memfile_notifier",
	.init = mft_init,
	.exit = mft_exit,
	.test_cases = mft_cases,
};

kunit_test_suite(mft_suite);

MODULE_DESCRIPTION("KUnit tests for the memfile_notifier core");
MODULE_LICENSE("GPL");
