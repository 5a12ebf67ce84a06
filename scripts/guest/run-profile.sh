#!/usr/bin/env bash
# Runs inside the bench guest: perf profiles (cpu-clock samples of the
# workload and the kernel work it causes), with the built-in C backend,
# then with gmem_rs.
#   run-profile.sh OUT SELFTESTS_DIR MODULE_DIR WORKLOAD [gmem_bench args]
# WORKLOAD: allocate or fault (gmem_bench -w), or contended (gmem_stress_test
# -b, 2 vCPUs, 10 s per store).
set -eu
OUT=$1 STDIR=$2 MODDIR=$3 WORKLOAD=$4
shift 4
# gmem_bench's extra arguments, kept apart: "set --" below replaces "$@".
EXTRA=("$@")
insmod "$MODDIR/mm/memfd_inaccessible.ko"
mkdir -p "$OUT"
: >"$OUT/profile.txt"
for b in c rust; do
	if [ "$b" = rust ]; then insmod "$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko"; fi
	if [ "$WORKLOAD" = contended ]; then
		set -- "$STDIR/kvm/x86_64/gmem_stress_test" -b "$b" -s 10 -v 2
	else
		set -- "$STDIR/kvm/x86_64/gmem_bench" -b "$b" -w "$WORKLOAD" ${EXTRA[@]+"${EXTRA[@]}"}
	fi
	perf record -q -e cpu-clock -F 4000 -o "$OUT/perf-$b.data" -- "$@" \
		>>"$OUT/profile.txt" 2>&1
	{
		echo "# backend $b, $WORKLOAD: symbols by share of samples"
		perf report -i "$OUT/perf-$b.data" --no-children --sort sym --stdio -q 2>/dev/null |
			grep -v '^$' | head -n 30
	} >>"$OUT/profile.txt"
	if [ "$b" = rust ]; then rmmod gmem_rs; fi
done
touch "$OUT/done"
