#!/usr/bin/env bash
# Configure and build the test kernel, its modules and the selftests in
# the cache. Each step does only what is stale.
#   build.sh config     allnoconfig + configs/*.config, checked
#   build.sh kernel     bzImage and modules
#   build.sh selftests  uAPI headers and the selftests make check runs, and
#                       the Linux guest one of them boots
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

# Kconfig drops what it cannot satisfy without a word: say what, and fail.
# A later fragment overrides an earlier one (host.config's NR_CPUS).
#   config_kept DOTCONFIG FRAGMENT...
config_kept() {
	local dotconfig=$1 line sym val got bad=0
	shift
	local -A want_val=()
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) want_val[${line%%=*}]=${line#*=} ;; esac
	done < <(cat "$@")
	for sym in "${!want_val[@]}"; do
		val=${want_val[$sym]} line=$sym=${want_val[$sym]}
		got=$(grep -E "^$sym=|^# $sym is not set" "$dotconfig" || true)
		if [ "$val" = n ]; then
			case "$got" in "" | "# $sym is not set") continue ;; esac
		elif [ "$got" = "$line" ]; then
			continue
		fi
		echo "    config: wanted $line, got '${got:-nothing}'" >&2
		bad=1
	done
	return "$bad"
}

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
	if ! config_kept "$KBUILD/.config" "${FRAGMENTS[@]}"; then
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
	guest
	[ ! -f "$KERNEL_STAMP.pending" ] || mv "$KERNEL_STAMP.pending" "$KERNEL_STAMP"
}

# The Linux guest that x86_64/gmem_linux_boot_test boots, from the same tree
# (tinyconfig + configs/guest.config, no Rust), and its initramfs: static
# busybox and the test's /init. Next to the test, in gmem_guest/.
guest() {
	local gb=$CACHE/build-guest out=$STOUT/kvm/x86_64/gmem_guest want
	local init=$GMEM_ROOT/tools/testing/selftests/kvm/x86_64/gmem_linux_boot_init.sh
	gmake() { make -C "$SRC" O="$gb" "${KMAKE_VARS[@]}" -j"$JOBS" "$@"; }
	want=$(sha256sum "$GMEM_ROOT/configs/guest.config" | cut -d' ' -f1)
	if [ ! -f "$gb/.config" ] ||
		[ "$(cat "$gb/.gmem-config-stamp" 2>/dev/null)" != "$want" ]; then
		mkdir -p "$gb"
		gmake -s tinyconfig >/dev/null
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$gb" "$gb/.config" \
			"$GMEM_ROOT/configs/guest.config" >/dev/null
		gmake -s olddefconfig >/dev/null
		config_kept "$gb/.config" "$GMEM_ROOT/configs/guest.config" ||
			die "the guest kernel's config lost options (above)"
		echo "$want" >"$gb/.gmem-config-stamp"
	fi
	# Its warnings (objtool's, on a tinyconfig kernel) go to the log.
	gmake -s bzImage 2>"$gb/build.log" || {
		tail -n 20 "$gb/build.log" >&2
		die "the guest kernel does not build (log: $gb/build.log)"
	}
	mkdir -p "$out"
	cp "$gb/arch/x86/boot/bzImage" "$out/bzImage"
	# kbuild builds gen_init_cpio (BLK_DEV_INITRD).
	"$gb/usr/gen_init_cpio" - >"$out/initramfs.cpio" <<-EOF
		dir /dev 0755 0 0
		nod /dev/console 0600 0 0 c 5 1
		nod /dev/kmsg 0600 0 0 c 1 11
		nod /dev/null 0666 0 0 c 1 3
		nod /dev/urandom 0666 0 0 c 1 9
		dir /proc 0755 0 0
		dir /sys 0755 0 0
		dir /bin 0755 0 0
		file /bin/busybox /bin/busybox 0755 0 0
		file /init $init 0755 0 0
	EOF
	echo "    guest kernel $(du -h "$out/bzImage" | cut -f1)," \
		"initramfs $(du -h "$out/initramfs.cpio" | cut -f1) in $out"
}

case "${1:-}" in
config | kernel | selftests) "$1" ;;
*) die "usage: build.sh config|kernel|selftests" ;;
esac
