#!/usr/bin/env bash
# make: set up, build, boot, and show the system working.
set -uo pipefail
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts

T0=$(date +%s)
prepare build

OUTDIR=$RESULTS/demo
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
demo() {
	"$S/vm.sh" "uname -r; insmod $KBUILD/virt/kvm/gmem_rs/gmem_rs.ko && dmesg | grep gmem_rs: &&
		cd $STOUT/kvm/x86_64 && ./gmem_demo_test && rmmod gmem_rs" | tee "$OUTDIR/demo.txt"
	grep -q '^gmem_demo: done' "$OUTDIR/demo.txt"
}
phase "boot and run the demo" demo

dt=$(( $(date +%s) - T0 ))
echo
echo "gmem-rs: Linux $BASE_KVERSION + $(git -C "$SRC" rev-list --count "base-$BASE_KVERSION..gmem-rs") patches (tip $(git -C "$SRC" rev-parse --short gmem-rs))"
echo "  kernel:    $KBUILD/arch/x86/boot/bzImage"
echo "  selftests: $STOUT"
echo "  demo:      $(grep -c '^gmem_demo:' "$OUTDIR/demo.txt") steps, guest_memfd backend: gmem_rs (Rust module)"
echo "  took $((dt / 60))m$((dt % 60))s; next: 'make check' runs every test"
