#!/usr/bin/env bash
# make bench: a kernel without the debug options, booted twice: gmem_bench
# and the contended benchmark run against the C backend and gmem_rs
# alternately, first in real time, then under QEMU -icount (guest time is
# instructions executed: it does not move with the host's load); then the
# summary of both.
#   GMEM_BENCH_ROUNDS (5, 0: no real-time pass),
#   GMEM_BENCH_ICOUNT_ROUNDS (3, 0: no -icount pass),
#   GMEM_BENCH_CONTENDED_SECONDS (5), GMEM_BENCH_ARGS (gmem_bench options,
#   e.g. "-s 512"), GMEM_BENCH_ONLY=contended or a list of groups (run-bench.sh),
#   GMEM_BENCH_ICOUNT_CPUS (1: the guest's CPUs in the -icount pass)
# make profile (bench.sh profile): the same kernel, perf profiles of one
# workload on each backend: GMEM_PROFILE=allocate (default), fault or contended.
# make insns (bench.sh insns): exact instruction counts of gmem_bench's timed
# windows, per kernel function, on each backend.
set -uo pipefail
export GMEM_DEBUG=0
# Room for gmem_bench's 4 GiB guest_memfd next to everything else, on one
# NUMA node: a file that spills to a second node measures the spill.
export GMEM_VM_MEMORY=${GMEM_VM_MEMORY:-8G} GMEM_VM_NODES=${GMEM_VM_NODES:-1}
export GMEM_KBUILD=${GMEM_KBUILD:-${GMEM_CACHE:-$HOME/.cache/gmem-rs}/build-bench}
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts
ROUNDS=${GMEM_BENCH_ROUNDS:-5}

prepare build
# One virtual ns per guest instruction; no sleeping in real time when idle.
ICOUNT_OPTS="-icount shift=0,sleep=off"

if [ "${1:-}" = profile ]; then
	OUT=$RESULTS/profile
	rm -rf "$OUT"
	mkdir -p "$OUT"
	profile() {
		"$S/vm.sh" "$S/guest/run-profile.sh $OUT $STOUT $KBUILD ${GMEM_PROFILE:-allocate} ${GMEM_BENCH_ARGS:-}"
		[ -f "$OUT/done" ]
	}
	phase "boot and profile ${GMEM_PROFILE:-allocate}" profile
	cat "$OUT/profile.txt"
	exit 0
fi

# make insns (bench.sh insns): the same kernel on one CPU under -icount, with
# a QEMU plugin that counts the instructions of each of gmem_bench's timed
# windows per kernel function, C against Rust. Exact: a 0.1% difference is
# real. GMEM_BENCH_ARGS as for make bench.
if [ "${1:-}" = insns ]; then
	OUT=$RESULTS/insns
	rm -rf "$OUT"
	mkdir -p "$OUT"
	INS=$TOOLS/insns
	# The marker's text goes here, where no other guest code is; the plugin
	# watches its entry, read back with nm.
	MARK_BASE=0x5a5a0000
	# The plugin API QEMU takes: 1 before QEMU 9.0, 2 from 9.0 on (10.0,
	# bookworm-backports', accepts no API below 2).
	qemu_version=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
	[ -n "$qemu_version" ] || die "cannot read qemu-system-x86_64's version"
	plugin_api=1
	[ "${qemu_version% *}" -ge 9 ] && plugin_api=2
	echo "    QEMU $(echo "$qemu_version" | tr ' ' .): plugin API $plugin_api"
	build_insns() {
		mkdir -p "$INS" &&
			gcc -O2 -Wall -shared -fPIC -fvisibility=hidden -DQEMU_PLUGIN_API=$plugin_api \
				-o "$INS/qemu-insn-count.so" "$S/qemu-insn-count.c" &&
			gcc -Os -Wall -nostdlib -static -fno-pie -no-pie -Wl,--build-id=none \
				-Wl,-Ttext-segment=$MARK_BASE -o "$INS/insn-mark" "$S/insn-mark.c"
	}
	phase "build the counting plugin" build_insns
	entry=$(nm "$INS/insn-mark" | awk '$3 == "_start" { print $1 }')
	[ -n "$entry" ] || die "insn-mark has no _start"
	count() {
		GMEM_VM_CPUS=1 GMEM_VM_QEMU_OPTS="$ICOUNT_OPTS -plugin $INS/qemu-insn-count.so,out=$OUT/counts.txt,marker=0x$entry" \
			"$S/vm.sh" "$S/guest/run-insns.sh $OUT $STOUT $KBUILD $INS/insn-mark ${GMEM_BENCH_ARGS:-}"
		[ -f "$OUT/done" ] && [ -s "$OUT/counts.txt" ]
	}
	phase "boot and count instructions" count
	"$S/insns-report.py" "$OUT" | tee "$OUT/report.txt"
	exit "${PIPESTATUS[0]}"
fi

OUT=$RESULTS/bench
rm -rf "$OUT"
mkdir -p "$OUT"
ICOUNT_ROUNDS=${GMEM_BENCH_ICOUNT_ROUNDS:-3}
[ "$ROUNDS" -gt 0 ] || [ "$ICOUNT_ROUNDS" -gt 0 ] ||
	die "GMEM_BENCH_ROUNDS=0 and GMEM_BENCH_ICOUNT_ROUNDS=0: nothing to run"
# Under -icount QEMU runs every vCPU on one host thread, so a second guest
# CPU adds no parallelism, only cross-CPU waits (TLB-flush IPIs, vCPU kicks)
# whose length depends on where its round-robin slices fall: they made the
# contended rows spread 20-140% in instructions. On one CPU they repeat.
ICOUNT_CPUS=${GMEM_BENCH_ICOUNT_CPUS:-1}
run() {
	rm -f "$OUT/done"
	"$S/vm.sh" "GMEM_BENCH_ONLY=${GMEM_BENCH_ONLY:-} GMEM_BENCH_CONTENDED_SECONDS=${GMEM_BENCH_CONTENDED_SECONDS:-} $S/guest/run-bench.sh $OUT $1 $STOUT $KBUILD $2 ${GMEM_BENCH_ARGS:-}"
	[ -f "$OUT/done" ]
}
# The roundtrip group's in-place rows need kvm.gmem_in_place_conversion=1 at
# boot: one more boot per pass, its rows added to the pass's file.
in_place() { # FILE ROUNDS
	case ",${GMEM_BENCH_ONLY:-roundtrip}," in *,roundtrip,*) ;; *) return 0 ;; esac
	GMEM_VM_APPEND=kvm.gmem_in_place_conversion=1 GMEM_BENCH_ONLY=roundtrip \
		run "in-place-$1" "$2" || return 1
	cat "$OUT/in-place-$1" >>"$OUT/$1"
}
if [ "$ROUNDS" -gt 0 ]; then
	phase "boot and run the benchmark" run bench.txt "$ROUNDS"
	phase "boot with in-place conversion, run its round trips" in_place bench.txt "$ROUNDS"
else
	: >"$OUT/bench.txt"
fi
ICOUNT_FILE=
if [ "$ICOUNT_ROUNDS" -gt 0 ]; then
	GMEM_VM_QEMU_OPTS=$ICOUNT_OPTS GMEM_VM_CPUS=$ICOUNT_CPUS \
		phase "boot with -icount on $ICOUNT_CPUS CPU(s), run again" \
		run bench-icount.txt "$ICOUNT_ROUNDS"
	GMEM_VM_QEMU_OPTS=$ICOUNT_OPTS GMEM_VM_CPUS=$ICOUNT_CPUS \
		phase "boot with -icount and in-place conversion, run its round trips" \
		in_place bench-icount.txt "$ICOUNT_ROUNDS"
	ICOUNT_FILE=$OUT/bench-icount.txt
fi

echo
echo "gmem_bench: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //"), $(nproc) cores; guest: QEMU TCG, ${GMEM_VM_CPUS:-2} vCPUs, ${GMEM_VM_MEMORY:-4G}, $GMEM_VM_NODES NUMA node(s); -icount pass: $ICOUNT_OPTS, $ICOUNT_CPUS vCPU(s)"
"$S/bench-report.py" "$OUT/bench.txt" $ICOUNT_FILE | tee "$OUT/report.txt"
