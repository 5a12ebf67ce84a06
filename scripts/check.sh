#!/usr/bin/env bash
# make check: build what is stale, boot once, run every test in that boot,
# boot again with in-place conversion for the tests of that mode, print one
# TAP line per test and the closing line.
#   check.sh [TEST...]   only these tests (names as in the TAP output,
#                        without the backend: guest_memfd_test, kunit, ...)
# GMEM_KCSAN=1: on the KCSAN kernel; GMEM_RUN_NAME: the results' directory;
# GMEM_STRESS_SECONDS, GMEM_STRESS_VCPUS: gmem_stress_test's round;
# GMEM_IN_PLACE=0/1: the second boot (default: only in a full run).
set -uo pipefail
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts

T0=$(date +%s)
# After make modules, the project's modules come from its out-of-tree build;
# while the kernel's own sources are unchanged, they are all that is built.
MODDIR=$KBUILD
if [ -f "$OOT/.active" ]; then
	if kernel_current; then
		# The tree still gets the modules' new sources: lint reads it.
		phase "assemble tree" "$S/assemble.sh"
	else
		prepare build
	fi
	phase "build modules (out of tree)" "$S/modules.sh"
	MODDIR=$OOT
else
	prepare build
fi

if [ "$#" -gt 0 ]; then
	TESTS=("$@")
else
	TESTS=(kunit "${MEMFD_TESTS[@]}" "${UPSTREAM_KVM_TESTS[@]}" $(project_kvm_tests))
fi

# make stress names its own results; KCSAN=1 keeps the KCSAN run's apart.
OUTDIR=$RESULTS/${GMEM_RUN_NAME:-check}
[ "${GMEM_KCSAN:-0}" = 1 ] && OUTDIR=$OUTDIR-kcsan
[ "${GMEM_DISTRO:-0}" = 1 ] && OUTDIR=$OUTDIR-distro
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
# The stress test's knobs reach the guest through its command line.
GUEST_ENV="GMEM_STRESS_SECONDS=${GMEM_STRESS_SECONDS:-} GMEM_STRESS_VCPUS=${GMEM_STRESS_VCPUS:-}"
# The VM's own limit grows with the stress rounds too.
export GMEM_VM_TIMEOUT=${GMEM_VM_TIMEOUT:-$((3600 + 12 * ${GMEM_STRESS_SECONDS:-0}))}
run_tests() {
	"$S/vm.sh" "env $GUEST_ENV $S/guest/run-tests.sh $OUTDIR $STOUT $MODDIR ${TESTS[*]}"
	[ -f "$OUTDIR/done" ] || echo "    the guest did not finish the run"
	return 0
}
phase "boot and run tests" run_tests

# In-place conversion is chosen at boot (kvm.gmem_in_place_conversion=1): a
# second boot runs the tests of that mode. GMEM_IN_PLACE=0 skips it, 1 runs it
# after a run of named tests too.
IN_PLACE_TESTS=(x86_64/gmem_conversion_test x86_64/gmem_no_direct_map_test guest_memfd_test)
IN_PLACE_DIR=$OUTDIR/in-place
run_in_place() {
	mkdir -p "$IN_PLACE_DIR"
	GMEM_VM_APPEND="kvm.gmem_in_place_conversion=1" "$S/vm.sh" \
		"env $GUEST_ENV GMEM_TAP_PREFIX=in-place: $S/guest/run-tests.sh $IN_PLACE_DIR $STOUT $MODDIR ${IN_PLACE_TESTS[*]}"
	[ -f "$IN_PLACE_DIR/done" ] || echo "    the in-place guest did not finish the run"
	return 0
}
IN_PLACE=${GMEM_IN_PLACE:-$([ "$#" -eq 0 ] && echo 1 || echo 0)}
[ "${GMEM_KCSAN:-0}" = 1 ] && IN_PLACE=0
if [ "$IN_PLACE" = 1 ] && [ ! -f "$OUTDIR/done" ]; then
	echo "    in-place boot skipped: the first run did not finish"
	IN_PLACE=0
elif [ "$IN_PLACE" = 1 ]; then
	phase "boot with in-place conversion and run its tests" run_in_place
fi

# After the run: the CLIPPY=1 build it does leaves kernel.o to rebuild (~30 s).
run_lint() {
	"$S/lint.sh" >"$OUTDIR/lint.tap" 2>"$OUTDIR/lint.err" || true
	grep -E '^(not )?ok ' "$OUTDIR/lint.tap" | sed 's/^/    /'
	[ -s "$OUTDIR/lint.tap" ] || echo "not ok - lint: did not run (see $OUTDIR/lint.err)" >"$OUTDIR/lint.tap"
	return 0
}
if [ "$#" -eq 0 ] && [ "${GMEM_KCSAN:-0}" = 1 ]; then
	echo "    lint: not run on the KCSAN kernel (make check runs it)"
elif [ "$#" -eq 0 ]; then
	phase "lint (rustfmt, clippy, checkpatch)" run_lint
fi

TAP=$OUTDIR/tap.txt
touch "$TAP"
# Appends the TAP lines of file $1 to $TAP, numbered after its own, and moves
# the plan line to the end.
append_tap() {
	local n line
	n=$(grep -Ec '^(not )?ok ' "$TAP")
	sed -i '/^1\.\.[0-9]*$/d' "$TAP"
	while IFS= read -r line; do
		n=$((n + 1))
		sed -E "s/^(not )?ok [0-9]* *-/\1ok $n -/" <<<"$line" >>"$TAP"
	done < <(grep -E '^(not )?ok ' "$1")
	echo "1..$n" >>"$TAP"
}
if [ "$IN_PLACE" = 1 ] && [ -f "$IN_PLACE_DIR/tap.txt" ]; then
	append_tap "$IN_PLACE_DIR/tap.txt"
	[ -s "$IN_PLACE_DIR/times.txt" ] && sed 's/ s  / s  in-place:/' "$IN_PLACE_DIR/times.txt" >>"$OUTDIR/times.txt"
fi
[ -f "$OUTDIR/lint.tap" ] && append_tap "$OUTDIR/lint.tap"
# A run that did not finish is a failure, numbered with the rest.
unfinished=$OUTDIR/unfinished.tap
: >"$unfinished"
[ -f "$OUTDIR/done" ] ||
	echo "not ok - guest: the test run did not finish (crash or timeout; see $OUTDIR)" >>"$unfinished"
if [ "$IN_PLACE" = 1 ] && [ ! -f "$IN_PLACE_DIR/done" ]; then
	echo "not ok - guest: the in-place run did not finish (crash or timeout; see $IN_PLACE_DIR)" >>"$unfinished"
fi
[ -s "$unfinished" ] && append_tap "$unfinished"
passed=$(grep -Ec '^ok ' "$TAP" | tr -d ' ')
skipped=$(grep -Ec '^ok .*# SKIP' "$TAP")
failed=$(grep -Ec '^not ok ' "$TAP")
passed=$((passed - skipped))
echo
echo "results: $OUTDIR (tap.txt, logs/, dmesg.txt)"
if [ -s "$OUTDIR/times.txt" ]; then
	echo "slowest tests:"
	sort -rn "$OUTDIR/times.txt" | head -n 5 | sed 's/^/  /'
fi
if [ "$failed" -gt 0 ]; then
	echo "failed:"
	grep -E '^not ok ' "$TAP" | sed 's/^/  /'
fi
dt=$(( $(date +%s) - T0 ))
echo "make check took $((dt / 60))m$((dt % 60))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
