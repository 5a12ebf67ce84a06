#!/usr/bin/env bash
# Runs inside the bench guest: gmem_bench against the built-in C backend
# and gmem_rs alternately (c, rust, c, rust, ...), ROUNDS times each.
#   run-bench.sh OUT SELFTESTS_DIR MODULE_DIR ROUNDS [gmem_bench args]
set -eu
OUT=$1 STDIR=$2 MODDIR=$3 ROUNDS=$4
shift 4
KO=$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko
BENCH=$STDIR/kvm/x86_64/gmem_bench
mkdir -p "$OUT"
# The mfd-* workloads need MFD_INACCESSIBLE.
insmod "$MODDIR/mm/memfd_inaccessible.ko"
: >"$OUT/bench.txt"
for r in $(seq "$ROUNDS"); do
	for b in c rust; do
		if [ "$b" = rust ]; then insmod "$KO"; fi
		echo "# round $r, backend $b"
		"$BENCH" -b "$b" "$@" | tee -a "$OUT/bench.txt"
		if [ "$b" = rust ]; then rmmod gmem_rs; fi
	done
done
touch "$OUT/done"
