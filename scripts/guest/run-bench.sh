#!/usr/bin/env bash
# Runs inside the bench guest: gmem_bench and the contended benchmark
# (gmem_stress_test -b) against the built-in C backend and gmem_rs
# alternately (c, rust, c, rust, ...), ROUNDS times each, into OUT/FILE.
#   run-bench.sh OUT FILE SELFTESTS_DIR MODULE_DIR ROUNDS [gmem_bench args]
# GMEM_BENCH_CONTENDED_SECONDS (5): each contended run, per store.
# GMEM_BENCH_ONLY=GROUP[,GROUP...]: only these groups: gmem_bench's -w groups,
# "default" (gmem_bench without -w), "contended" (the contended benchmark).
set -euo pipefail
OUT=$1 FILE=$2 STDIR=$3 MODDIR=$4 ROUNDS=$5
shift 5
KO=$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko
BENCH=$STDIR/kvm/x86_64/gmem_bench
STRESS=$STDIR/kvm/x86_64/gmem_stress_test
SECONDS_EACH=${GMEM_BENCH_CONTENDED_SECONDS:-5}
BENCH_GROUPS="default scaling huge secret shared roundtrip contended"
[ -z "${GMEM_BENCH_ONLY:-}" ] || BENCH_GROUPS=$(echo "$GMEM_BENCH_ONLY" | tr , ' ')
# 1 vCPU, 2, and as many as the guest has CPUs.
VCPUS=$(printf '%s\n' 1 2 "$(nproc)" | sort -nu)
mkdir -p "$OUT"
# The mfd-* workloads need MFD_INACCESSIBLE; floor-allocate, the floor module.
insmod "$MODDIR/mm/memfd_inaccessible.ko"
insmod "$MODDIR/virt/kvm/gmem_bench/kvm_gmem_bench_floor.ko"
: >"$OUT/$FILE"
for r in $(seq "$ROUNDS"); do
	for b in c rust; do
		if [ "$b" = rust ]; then insmod "$KO"; fi
		echo "# round $r, backend $b"
		# huge: gmem_rs's 2 MiB rows; the C backend says it has none.
		for g in $BENCH_GROUPS; do
			case $g in
			contended) continue ;;
			default) "$BENCH" -b "$b" "$@" ;;
			*) "$BENCH" -b "$b" -w "$g" "$@" ;;
			esac | tee -a "$OUT/$FILE"
		done
		case " $BENCH_GROUPS " in *" contended "*) contended=1 ;; *) contended=0 ;; esac
		for v in $VCPUS; do
			[ "$contended" = 1 ] || break
			"$STRESS" -b "$b" -s "$SECONDS_EACH" -v "$v" >"$OUT/contended.log.tmp" 2>&1 ||
				{ cat "$OUT/contended.log.tmp"; exit 1; }
			cat "$OUT/contended.log.tmp" >>"$OUT/contended.log"
			grep '^BENCH ' "$OUT/contended.log.tmp" | tee -a "$OUT/$FILE"
		done
		if [ "$b" = rust ]; then rmmod gmem_rs; fi
	done
done
rm -f "$OUT/contended.log.tmp"
touch "$OUT/done"
