#!/usr/bin/env bash
# Configure and build the test kernel, its modules and the selftests in
# the cache. Each step does only what is stale.
#   build.sh config     allnoconfig + configs/*.config, checked
#   build.sh kernel     bzImage and modules
#   build.sh selftests  uAPI headers and the selftests make check runs
set -euo pipefail
. "$(dirname "$0")/common.sh"

FRAGMENTS=("$GMEM_ROOT/configs/gmem-rs.config")
if [ "${GMEM_DEB:-0}" = 1 ]; then
	# make deb: the distro variant without debug options, bootable on a host.
	FRAGMENTS+=("$GMEM_ROOT/configs/distro.config" "$GMEM_ROOT/configs/host.config")
elif [ "${GMEM_KCSAN:-0}" = 1 ]; then
	FRAGMENTS+=("$GMEM_ROOT/configs/kcsan.config")
elif [ "${GMEM_DEBUG:-1}" = 1 ]; then
	FRAGMENTS+=("$GMEM_ROOT/configs/debug.config")
fi
[ "${GMEM_DISTRO:-0}" = 1 ] && [ "${GMEM_DEB:-0}" != 1 ] &&
	FRAGMENTS+=("$GMEM_ROOT/configs/distro.config")

config() {
	local stamp="$KBUILD/.gmem-config-stamp" want
	want=$(cat "${FRAGMENTS[@]}" | sha256sum | cut -d' ' -f1)
	want="$want $(/usr/bin/rustc --version | tr ' ' _) $BASE_KVERSION"
	if [ -f "$KBUILD/.config" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		echo "    config unchanged"
		return
	fi
	mkdir -p "$KBUILD"
	kmake -s allnoconfig >/dev/null
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$KBUILD" "$KBUILD/.config" "${FRAGMENTS[@]}" >/dev/null
	kmake -s olddefconfig >/dev/null
	# Kconfig drops what it cannot satisfy without a word: say so, and stop.
	# A later fragment overrides an earlier one (host.config's NR_CPUS).
	local line sym val got bad=0
	local -A want_val=()
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) want_val[${line%%=*}]=${line#*=} ;; esac
	done < <(cat "${FRAGMENTS[@]}")
	for sym in "${!want_val[@]}"; do
		val=${want_val[$sym]} line=$sym=${want_val[$sym]}
		got=$(grep -E "^$sym=|^# $sym is not set" "$KBUILD/.config" || true)
		if [ "$val" = n ]; then
			case "$got" in "" | "# $sym is not set") continue ;; esac
		elif [ "$got" = "$line" ]; then
			continue
		fi
		echo "    config: wanted $line, got '${got:-nothing}'" >&2
		bad=1
	done
	if [ "$bad" = 1 ]; then
		grep -q '^CONFIG_RUST=y' "$KBUILD/.config" ||
			kmake rustavailable >&2 || true
		die "the kernel config lost options (above); if CONFIG_RUST is among them, the Rust toolchain is not the one setup installs (README.md, setup)"
	fi
	echo "$want" >"$stamp"
	echo "    config written: $KBUILD/.config"
}

kernel() {
	# The stamp says the kernel and its selftests match the sources: not while
	# they are being rebuilt, and not if the build stops half-way.
	rm -f "$KERNEL_STAMP"
	kernel_sources_hash >"$KERNEL_STAMP.pending"
	kmake -s bzImage modules
	# A new kernel: its own modules are current; make modules opts in again.
	rm -f "$OOT/.active"
	echo "    $(cat "$KBUILD/include/config/kernel.release") $(du -h "$KBUILD/arch/x86/boot/bzImage" | cut -f1) bzImage"
}

# kvm's Makefile builds every test it lists; build only the ones we run.
selftests() {
	kmake -s headers >/dev/null
	local hdr="-isystem $KBUILD/usr/include"
	mkdir -p "$STOUT/kvm"
	local t targets=()
	for t in "${UPSTREAM_KVM_TESTS[@]}" $(project_kvm_tests) x86_64/gmem_bench; do
		targets+=("$STOUT/kvm/$t")
	done
	make -s -C "$SRC/tools/testing/selftests/kvm" OUTPUT="$STOUT/kvm" \
		KHDR_INCLUDES="$hdr" -j"$JOBS" "${targets[@]}"
	echo "    ${#targets[@]} KVM selftests in $STOUT/kvm"
	# Only the programs: the directory's fuse tests need libfuse.
	mkdir -p "$STOUT/memfd"
	targets=()
	for t in "${MEMFD_TESTS[@]}"; do
		targets+=("$STOUT/$t")
	done
	make -s -C "$SRC/tools/testing/selftests/memfd" OUTPUT="$STOUT/memfd" \
		KHDR_INCLUDES="$hdr" -j"$JOBS" "${targets[@]}"
	echo "    ${#targets[@]} memfd selftests in $STOUT/memfd"
	[ ! -f "$KERNEL_STAMP.pending" ] || mv "$KERNEL_STAMP.pending" "$KERNEL_STAMP"
}

case "${1:-}" in
config | kernel | selftests) "$1" ;;
*) die "usage: build.sh config|kernel|selftests" ;;
esac
