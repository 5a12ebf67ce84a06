#!/usr/bin/env bash
# Runs inside the make insns guest (QEMU with qemu-insn-count.so): gmem_bench's
# single-threaded workloads against the built-in C backend and gmem_rs
# alternately, twice each (C, Rust, C, Rust): other work in the guest now
# and then lands in a window, and only ever adds to it, so the report takes
# each window's smaller count. The phase marker runs at each of gmem_bench's
# clock reads, so that the plugin counts each timed window apart. First,
# two marks with nothing between them: what a mark itself costs. The
# kernel's symbols, which the report maps the counts to, are read while
# gmem_rs is loaded.
#   run-insns.sh OUT SELFTESTS_DIR MODULE_DIR MARK [gmem_bench args]
set -euo pipefail
OUT=$1 STDIR=$2 MODDIR=$3 MARK=$4
shift 4
KO=$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko
# The programs run from the guest's tmpfs, and gmem_bench's output goes
# there, read after it exits: reads of the host's files (9p) in a window,
# or a reader woken by a pipe, would be counted in it.
TMP=$(mktemp -d /run/insns.XXXXXX)
cp "$STDIR/kvm/x86_64/gmem_bench" "$MARK" "$TMP/"
BENCH=$TMP/gmem_bench MARK=$TMP/$(basename "$MARK")
: >"$OUT/bench.txt"
"$MARK"
"$MARK"
echo "MARK alone" >>"$OUT/bench.txt"
run() {
	GMEM_BENCH_MARK=$MARK "$BENCH" -b "$1" -w "$2" "${@:3}" >"$TMP/out" ||
		{ cat "$TMP/out"; exit 1; }
	grep '^BENCH ' "$TMP/out" | tee -a "$OUT/bench.txt" || true
}
for b in c rust c rust; do
	if [ "$b" = rust ]; then insmod "$KO"; fi
	for w in fault mmap allocate secret; do
		run "$b" "$w" "$@"
	done
	if [ "$b" = rust ]; then
		# The modules' symbols too; the guest runs as root.
		cat /proc/kallsyms >"$OUT/kallsyms"
		rmmod gmem_rs
	fi
done
rm -rf "$TMP"
touch "$OUT/done"
