// SPDX-License-Identifier: GPL-2.0
/*
 * make insns: a QEMU TCG plugin that counts the guest instructions run from each translated block's start
 * address, split into phases the guest marks, so that a profile is exact,
 * not sampled: an instruction count does not move with the host's load.
 *
 *   -plugin qemu-insn-count.so,out=FILE,marker=0xADDR
 *
 * marker: a guest virtual address; each time a block starting there runs,
 * the next phase begins (the guest runs insn-mark, whose entry is there).
 * At exit, FILE gets one line per block start that ran:
 *   VADDR PHASE0_INSNS PHASE1_INSNS ...
 * A block is counted whole when it starts: one cut short by an exception
 * or interrupt counts the instructions it did not run too, the same for
 * both backends. Only the API's few calls are declared here, for the API
 * QEMU_PLUGIN_API names (bench.sh picks it from QEMU's version): 1 for QEMU
 * before 9.0 (Debian 12's 7.2), whose inline counters are plain memory; 2
 * for 9.0 and later (bookworm-backports' 10.0), which accept no API below 2
 * and count per vCPU in scoreboards.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef QEMU_PLUGIN_API
#define QEMU_PLUGIN_API 1
#endif

typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name;
	struct {
		int min;
		int cur;
	} version;
	bool system_emulation;
	union {
		struct {
			int smp_vcpus;
			int max_vcpus;
		} system;
	};
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
#if QEMU_PLUGIN_API >= 2
struct qemu_plugin_scoreboard;
typedef struct {
	struct qemu_plugin_scoreboard *score;
	size_t offset;
} qemu_plugin_u64;
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
/* An inline function in QEMU's header, not an exported symbol. */
static inline qemu_plugin_u64 qemu_plugin_scoreboard_u64(struct qemu_plugin_scoreboard *score)
{
	return (qemu_plugin_u64){ .score = score, .offset = 0 };
}
uint64_t qemu_plugin_u64_sum(qemu_plugin_u64 entry);
void qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(struct qemu_plugin_tb *tb,
						       enum qemu_plugin_op op,
						       qemu_plugin_u64 entry, uint64_t imm);
#else
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
					      enum qemu_plugin_op op, void *ptr,
					      uint64_t imm);
#endif
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
				    void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = QEMU_PLUGIN_API;

/* Two marks per window, each workload twice per backend: 44 windows, 91 phases. */
#define MAX_PHASES 128

/*
 * One translation of a block. Its counter is bumped inline each time the
 * block runs (not atomically: run the guest on one vCPU, or under -icount,
 * where every vCPU runs on one thread); a phase change moves what the
 * counters gathered into the phase that ended.
 */
struct block {
	struct block *next;
	uint64_t vaddr;
	uint64_t insns;		/* instructions the block adds per run */
#if QEMU_PLUGIN_API >= 2
	qemu_plugin_u64 runs;	/* bumped inline, per vCPU */
#else
	uint64_t runs;		/* bumped inline */
#endif
	uint64_t runs_before;	/* runs when the current phase began */
	uint64_t phase_insns[MAX_PHASES];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *blocks;
static unsigned int phase;
static bool too_many;
static uint64_t marker;
static bool have_marker;
static const char *out_path;

static uint64_t runs(const struct block *b)
{
#if QEMU_PLUGIN_API >= 2
	return qemu_plugin_u64_sum(b->runs);
#else
	return b->runs;
#endif
}

static void end_phase(void)
{
	struct block *b;
	uint64_t n;

	for (b = blocks; b; b = b->next) {
		n = runs(b);
		b->phase_insns[phase] += (n - b->runs_before) * b->insns;
		b->runs_before = n;
	}
}

static void on_marker(unsigned int vcpu, void *data)
{
	pthread_mutex_lock(&lock);
	/* Past the last phase, the rest stays in it (and the report refuses). */
	if (phase + 1 < MAX_PHASES) {
		end_phase();
		phase++;
	} else if (!too_many) {
		qemu_plugin_outs("qemu-insn-count: too many phases\n");
		too_many = true;
	}
	pthread_mutex_unlock(&lock);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct block *b = calloc(1, sizeof(*b));

	if (!b) {
		qemu_plugin_outs("qemu-insn-count: out of memory\n");
		abort();
	}
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = qemu_plugin_tb_n_insns(tb);
#if QEMU_PLUGIN_API >= 2
	/* QEMU aborts if it cannot allocate one. */
	b->runs = qemu_plugin_scoreboard_u64(qemu_plugin_scoreboard_new(sizeof(uint64_t)));
#endif
	pthread_mutex_lock(&lock);
	b->next = blocks;
	blocks = b;
	pthread_mutex_unlock(&lock);
#if QEMU_PLUGIN_API >= 2
	qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, b->runs, 1);
#else
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->runs, 1);
#endif
	if (have_marker && b->vaddr == marker)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static int cmp_vaddr(const void *a, const void *b)
{
	const struct block *x = *(struct block *const *)a, *y = *(struct block *const *)b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static void on_exit_write(qemu_plugin_id_t id, void *data)
{
	struct block **v, *b;
	size_t n = 0, i, j;
	unsigned int p;
	FILE *f;

	pthread_mutex_lock(&lock);
	end_phase();
	for (b = blocks; b; b = b->next)
		n++;
	v = malloc((n ? n : 1) * sizeof(*v));
	f = fopen(out_path, "w");
	if (!v || !f) {
		qemu_plugin_outs("qemu-insn-count: cannot write the counts\n");
		pthread_mutex_unlock(&lock);
		return;
	}
	for (i = 0, b = blocks; b; b = b->next)
		v[i++] = b;
	/* Retranslations of a block share its start: one line for all. */
	qsort(v, n, sizeof(*v), cmp_vaddr);
	fprintf(f, "# phases %u\n", phase + 1);
	for (i = 0; i < n; i = j) {
		uint64_t sum[MAX_PHASES] = { 0 };
		bool any = false;

		for (j = i; j < n && v[j]->vaddr == v[i]->vaddr; j++)
			for (p = 0; p <= phase; p++)
				sum[p] += v[j]->phase_insns[p];
		for (p = 0; p <= phase; p++)
			any |= sum[p] != 0;
		if (!any)
			continue;
		fprintf(f, "%" PRIx64, v[i]->vaddr);
		for (p = 0; p <= phase; p++)
			fprintf(f, " %" PRIu64, sum[p]);
		fputc('\n', f);
	}
	fclose(f);
	free(v);
	pthread_mutex_unlock(&lock);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			out_path = argv[i] + 4;
		} else if (!strncmp(argv[i], "marker=", 7)) {
			marker = strtoull(argv[i] + 7, NULL, 0);
			have_marker = true;
		} else {
			fprintf(stderr, "qemu-insn-count: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	if (!out_path) {
		fprintf(stderr, "qemu-insn-count: no out=FILE\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
	return 0;
}
