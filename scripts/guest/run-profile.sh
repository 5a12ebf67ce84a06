#!/usr/bin/env bash
# Runs inside the bench guest: perf profiles (cpu-clock samples of
# gmem_bench and the kernel work it causes) of the allocate workload, with
# the built-in C backend, then with gmem_rs.
#   run-profile.sh OUT SELFTESTS_DIR MODULE_DIR [gmem_bench args]
set -eu
OUT=$1 STDIR=$2 MODDIR=$3
shift 3
BENCH=$STDIR/kvm/x86_64/gmem_bench
mkdir -p "$OUT"
: >"$OUT/profile.txt"
for b in c rust; do
	if [ "$b" = rust ]; then insmod "$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko"; fi
	perf record -q -e cpu-clock -F 4000 -o "$OUT/perf-$b.data" -- \
		"$BENCH" -b "$b" -w allocate "$@" >>"$OUT/profile.txt" 2>&1
	{
		echo "# backend $b: symbols by share of samples"
		perf report -i "$OUT/perf-$b.data" --no-children --sort sym --stdio -q 2>/dev/null |
			grep -v '^$' | head -n 25
	} >>"$OUT/profile.txt"
	if [ "$b" = rust ]; then rmmod gmem_rs; fi
done
touch "$OUT/done"
