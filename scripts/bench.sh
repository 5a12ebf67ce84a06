#!/usr/bin/env bash
# make bench: a kernel without the debug options, booted once, gmem_bench
# run against the C backend and gmem_rs alternately, then the summary.
#   GMEM_BENCH_ROUNDS (5), GMEM_BENCH_ARGS (gmem_bench options, e.g. "-s 512")
# make profile (bench.sh profile): the same kernel, perf profiles of the
# allocate workload on each backend.
set -uo pipefail
export GMEM_DEBUG=0
# Room for gmem_bench's 4 GiB guest_memfd next to everything else.
export GMEM_VM_MEMORY=${GMEM_VM_MEMORY:-8G}
export GMEM_KBUILD=${GMEM_KBUILD:-${GMEM_CACHE:-$HOME/.cache/gmem-rs}/build-bench}
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts
ROUNDS=${GMEM_BENCH_ROUNDS:-5}

prepare build

if [ "${1:-}" = profile ]; then
	OUT=$RESULTS/profile
	rm -rf "$OUT"
	mkdir -p "$OUT"
	profile() {
		"$S/vm.sh" "$S/guest/run-profile.sh $OUT $STOUT $KBUILD ${GMEM_BENCH_ARGS:-}"
		[ -f "$OUT/done" ]
	}
	phase "boot and profile allocate" profile
	cat "$OUT/profile.txt"
	exit 0
fi

OUT=$RESULTS/bench
rm -rf "$OUT"
mkdir -p "$OUT"
run() {
	"$S/vm.sh" "$S/guest/run-bench.sh $OUT $STOUT $KBUILD $ROUNDS ${GMEM_BENCH_ARGS:-}"
	[ -f "$OUT/done" ]
}
phase "boot and run the benchmark" run

echo
echo "gmem_bench: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //"), $(nproc) cores; guest: QEMU TCG, ${GMEM_VM_CPUS:-2} vCPUs, ${GMEM_VM_MEMORY:-4G}"
"$S/bench-report.py" "$OUT/bench.txt" | tee "$OUT/report.txt"
