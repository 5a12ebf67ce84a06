#!/usr/bin/env bash
# Runs inside the test guest (virtme-ng), as root. Prints one TAP line per
# test and writes them, the logs and the kernel log to $RESULTS.
#   run-tests.sh RESULTS SELFTESTS_DIR MODULE_DIR TEST...
# A TEST is a KVM selftest path relative to SELFTESTS_DIR/kvm; each runs
# once per guest_memfd backend: "c" (KVM's built-in guest_memfd), then
# "rust" (the gmem_rs module from MODULE_DIR, loaded). "memfd/NAME" is a
# memfd selftest, run once. "kunit" stands for every KUnit suite that ran
# at boot. memfd_inaccessible is loaded for all tests and must unload at
# the end. The kernel log check runs last.
set -u
RESULTS=$1 STDIR=$2 MODDIR=$3
shift 3
GMEM_RS_KO=$MODDIR/virt/kvm/gmem_rs/gmem_rs.ko
MFD_INACCESSIBLE_KO=$MODDIR/mm/memfd_inaccessible.ko
POPULATE_TEST_KO=$MODDIR/virt/kvm/gmem_test/kvm_gmem_populate_test.ko
export GMEM_RS_KO MFD_INACCESSIBLE_KO
mkdir -p "$RESULTS/logs"
# gmem_stress_test runs 2 stores x up to 3 rounds of GMEM_STRESS_SECONDS.
TEST_TIMEOUT=$((900 + 6 * ${GMEM_STRESS_SECONDS:-0}))
TAP=$RESULTS/tap.txt
# A second boot's tests are told apart by this prefix (make check's in-place run).
TAP_PREFIX=${GMEM_TAP_PREFIX:-}
: >"$TAP"
n=0

tap() { # tap ok|fail|skip NAME [REASON]
	n=$((n + 1))
	local line
	case "$1" in
	ok) line="ok $n - $TAP_PREFIX$2" ;;
	skip) line="ok $n - $TAP_PREFIX$2 # SKIP ${3:-}" ;;
	*) line="not ok $n - $TAP_PREFIX$2${3:+ # $3}" ;;
	esac
	echo "$line" | tee -a "$TAP"
}

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug

# KUnit suites ran at boot (built in); their results are in debugfs.
run_kunit() {
	local d found=0 line status name rest
	for d in /sys/kernel/debug/kunit/*/; do
		[ -f "$d/results" ] || continue
		found=1
		cp "$d/results" "$RESULTS/logs/kunit-$(basename "$d").ktap"
		while IFS= read -r line; do
			# Test cases are the lines indented once (4 spaces).
			[[ $line =~ ^\ {4}(not\ )?ok\ [0-9]+\ ([^\ #]+)(.*)$ ]] || continue
			name="kunit:$(basename "$d").${BASH_REMATCH[2]}"
			rest=${BASH_REMATCH[3]}
			if [[ $rest =~ \#\ *[Ss][Kk][Ii][Pp] ]]; then
				tap skip "$name" "${rest#*# }"
			elif [ -z "${BASH_REMATCH[1]:-}" ]; then
				tap ok "$name"
			else
				tap fail "$name"
			fi
		done <"$d/results"
	done
	[ "$found" = 1 ] || tap fail "kunit" "no KUnit results in debugfs (did the suites run at boot?)"
}

# The guest_memfd backends: new guest_memfds are the module's while it is
# loaded, the built-in C implementation's otherwise.
BACKENDS="c rust"
module_loaded() { [ -d /sys/module/gmem_rs ]; }
select_backend() {
	case "$1" in
	c)
		! module_loaded || rmmod gmem_rs || return 1
		! module_loaded
		;;
	rust)
		module_loaded || insmod "$GMEM_RS_KO" || return 1
		module_loaded
		;;
	*) return 1 ;;
	esac
}

run_kvm_test() { # run_kvm_test BACKEND TEST
	if [ ! -e /dev/kvm ]; then
		tap fail "$1:$2" "no /dev/kvm in the guest"
		return
	fi
	run_selftest "$1:$2" "$STDIR/kvm/$2" "$RESULTS/logs/$1-$(echo "$2" | tr / _).log"
}

run_selftest() { # run_selftest NAME BINARY LOG
	local name=$1 bin=$2 log=$3 rc
	if [ ! -x "$bin" ]; then
		tap fail "$name" "$bin was not built"
		return
	fi
	local t0=$SECONDS
	(cd "$(dirname "$bin")" && timeout "$TEST_TIMEOUT" "$bin") >"$log" 2>&1
	rc=$?
	# A fault-injection test that died must not leave its window open.
	case "$name" in *failnth*) echo "gmem_failnth_test: fault injection off" >/dev/kmsg ;; esac
	printf '%5d s  %s\n' $((SECONDS - t0)) "$name" >>"$RESULTS/times.txt"
	case $rc in
	0) tap ok "$name" ;;
	4) # KSFT_SKIP: every test here must run, so a skip is a failure.
		tap fail "$name" "skipped, but it must run here: $(grep -m1 -i skip "$log")" ;;
	124) tap fail "$name" "timed out after $TEST_TIMEOUT s" ;;
	*)
		tap fail "$name" "exit $rc, log: $log"
		tail -n 15 "$log" | sed 's/^/#   /'
		;;
	esac
}

# BUG, WARNING, KASAN, lockdep and kmemleak reports fail the run.
check_kernel_log() {
	local leaks=""
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan >/sys/kernel/debug/kmemleak
		cat /sys/kernel/debug/kmemleak >"$RESULTS/kmemleak.txt"
		[ -s "$RESULTS/kmemleak.txt" ] && leaks="$(grep -c '^unreferenced object' "$RESULTS/kmemleak.txt") kmemleak reports"
	fi
	dmesg >"$RESULTS/dmesg.txt"
	# Allocation failure reports (warn_alloc) are what gmem_failnth_test's
	# injected failures must produce: they pass between its markers.
	awk '/gmem_failnth_test: fault injection on/ { fi = 1 }
	     /gmem_failnth_test: fault injection off/ { fi = 0; skip = 0 }
	     fi && /(vmalloc error:|page allocation failure:)/ { skip = 1; n++ }
	     skip { if (/<\/TASK>/) skip = 0; next }
	     { print }
	     END { if (n) print n " allocation failure reports under fault injection" >"/dev/stderr" }' \
		"$RESULTS/dmesg.txt" >"$RESULTS/dmesg-checked.txt" 2>"$RESULTS/logs/injected-failures.txt"
	# KCSAN reports data races all over the kernel. A report whose racing
	# accesses (the two functions its title names) are in the project's code
	# fails the run: C of guest_memfd, memfile, memfd_inaccessible, the Rust
	# helpers, or Rust ("6kernel" in its symbols). The others, e.g. KVM's
	# lockless mmu_invalidate_retry_gfn_unsafe() reads, which C guest_memfd
	# reaches the same way, are kept in kcsan-other.txt and their titles
	# listed.
	if grep -q 'BUG: KCSAN:' "$RESULTS/dmesg-checked.txt"; then
		awk -v other="$RESULTS/kcsan-other.txt" -v ours="$RESULTS/kcsan-ours.txt" '
		     function flush() {
			     if (buf == "") return
			     if (title ~ /gmem|memfile|memfd_inaccessible|rust_helper|6kernel/) { printf "%s", buf; printf "%s", buf >ours; no++ }
			     else { printf "%s", buf >other; nother++; sub(/^.*BUG: KCSAN: /, "", title); seen[title]++ }
			     buf = ""; title = ""
		     }
		     /BUG: KCSAN:/ { flush(); inrep = 1 }
		     inrep && /^\[ *[0-9.]+\] =+$/ { buf = buf $0 "\n"; flush(); inrep = 0; next }
		     /BUG: KCSAN:/ { title = $0 }
		     inrep { buf = buf $0 "\n"; next }
		     { print }
		     END {
			     flush()
			     print no + 0 " KCSAN reports in the project'"'"'s code, " nother + 0 " elsewhere:" >"/dev/stderr"
			     for (t in seen) print "  " seen[t] "x " t >"/dev/stderr"
		     }' \
			"$RESULTS/dmesg-checked.txt" >"$RESULTS/dmesg-checked.tmp" 2>"$RESULTS/logs/kcsan.txt"
		mv "$RESULTS/dmesg-checked.tmp" "$RESULTS/dmesg-checked.txt"
	fi
	local pat='BUG:|WARNING:|KASAN:|UBSAN:|Oops|general protection fault|kernel BUG|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: lockdep|lockdep is turned off|unreferenced object|suspected memory leak|Call Trace:'
	local hits
	hits=$(grep -E "$pat" "$RESULTS/dmesg-checked.txt" | head -n 20)
	[ -s "$RESULTS/logs/kcsan.txt" ] && sed 's/^/# /' "$RESULTS/logs/kcsan.txt"
	if [ -z "$hits" ] && [ -z "$leaks" ]; then
		tap ok "kernel-log: no BUG/WARNING/KASAN/lockdep/kmemleak reports"
	else
		tap fail "kernel-log: no BUG/WARNING/KASAN/lockdep/kmemleak reports" "${leaks:-see dmesg.txt}"
		echo "$hits" | sed 's/^/#   /'
	fi
}

mfd_loaded() { [ -d /sys/module/memfd_inaccessible ]; }

echo "TAP version 13" | tee -a "$TAP"
# Which build of the project's modules this run loads (make modules: out of tree).
echo "# modules from $MODDIR" | tee -a "$TAP"
if ! mfd_loaded && ! insmod "$MFD_INACCESSIBLE_KO" >"$RESULTS/logs/insmod-mfd.log" 2>&1; then
	tap fail "memfd_inaccessible: module loads" "$(cat "$RESULTS/logs/insmod-mfd.log")"
fi
# gmem_populate_test calls kvm_gmem_populate() through it.
[ -d /sys/module/kvm_gmem_populate_test ] || insmod "$POPULATE_TEST_KO" >"$RESULTS/logs/insmod-populate.log" 2>&1 ||
	tap fail "kvm_gmem_populate_test: module loads" "$(cat "$RESULTS/logs/insmod-populate.log")"
kvm_tests=()
for t in "$@"; do
	case "$t" in
	kunit) run_kunit ;;
	memfd/*) run_selftest "$t" "$STDIR/$t" "$RESULTS/logs/$(echo "$t" | tr / _).log" ;;
	*) kvm_tests+=("$t") ;;
	esac
done
if [ "${#kvm_tests[@]}" -gt 0 ]; then
	for b in $BACKENDS; do
		backend_ok=1
		select_backend "$b" >"$RESULTS/logs/select-$b.log" 2>&1 || backend_ok=0
		for t in "${kvm_tests[@]}"; do
			# Tests of the module itself run against it only.
			case "$b:$t" in c:*gmem_rs_*) continue ;; esac
			if [ "$backend_ok" = 1 ]; then
				run_kvm_test "$b" "$t"
			else
				tap fail "$b:$t" "could not select the $b backend: $(tail -n1 "$RESULTS/logs/select-$b.log")"
			fi
		done
	done
	# Every file and binding of the module is gone: it must unload.
	if module_loaded; then
		if rmmod gmem_rs >"$RESULTS/logs/rmmod.log" 2>&1; then
			tap ok "rust:module unloads after the tests"
		else
			tap fail "rust:module unloads after the tests" "$(cat "$RESULTS/logs/rmmod.log"; cat /sys/module/gmem_rs/refcnt)"
		fi
	fi
fi
if [ -d /sys/module/kvm_gmem_populate_test ]; then
	if rmmod kvm_gmem_populate_test >"$RESULTS/logs/rmmod-populate.log" 2>&1; then
		tap ok "kvm_gmem_populate_test: module unloads after the tests"
	else
		tap fail "kvm_gmem_populate_test: module unloads after the tests" "$(cat "$RESULTS/logs/rmmod-populate.log")"
	fi
fi
# Every MFD_INACCESSIBLE file is gone: the module must unload.
if mfd_loaded; then
	if rmmod memfd_inaccessible >"$RESULTS/logs/rmmod-mfd.log" 2>&1; then
		tap ok "memfd_inaccessible: module unloads after the tests"
	else
		tap fail "memfd_inaccessible: module unloads after the tests" "$(cat "$RESULTS/logs/rmmod-mfd.log")"
	fi
else
	tap fail "memfd_inaccessible: module unloads after the tests" "not loaded at the end"
fi
check_kernel_log
echo "1..$n" | tee -a "$TAP"
touch "$RESULTS/done"
