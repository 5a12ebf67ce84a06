#!/usr/bin/env bash
# Runs inside the make insns guest (QEMU with qemu-insn-count.so): gmem_bench's
# single-threaded workloads against the built-in C backend, then gmem_rs,
# with the phase marker run at each of gmem_bench's clock reads, so that the
# plugin counts each timed window apart. Then the kernel's symbols, which
# the report maps the counts to.
#   run-insns.sh OUT SELFTESTS_DIR MODULE_DIR MARK [gmem_bench args]
set -euo pipefail
OUT=$1 STDIR=$2 MODDIR=$3 MARK=$4
shift 4
BENCH=$STDIR/kvm/x86_64/gmem_bench
insmod "$MODDIR/mm/memfd_inaccessible.ko"
: >"$OUT/bench.txt"
# gmem_bench's output goes to a file in the guest's tmpfs, read after it
# exits: a reader woken by a pipe, or a write to the shared results folder
# (9p), would run inside the next timed window and be counted there.
TMP=$(mktemp)
for b in c rust; do
	if [ "$b" = rust ]; then insmod "$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko"; fi
	for w in fault mmap allocate; do
		GMEM_BENCH_MARK=$MARK "$BENCH" -b "$b" -w "$w" "$@" >"$TMP"
		grep '^BENCH ' "$TMP" | tee -a "$OUT/bench.txt"
	done
done
rm -f "$TMP"
# Modules' symbols too (gmem_rs stays loaded); the guest runs as root.
cat /proc/kallsyms >"$OUT/kallsyms"
touch "$OUT/done"
