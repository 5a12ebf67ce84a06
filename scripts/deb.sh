#!/usr/bin/env bash
# make deb: Debian packages of the patched kernel, then a boot test of them.
#   linux-image-REL     the kernel and its modules, gmem_rs and memfd_inaccessible among them
#   linux-headers-REL   for out-of-tree C modules (Rust ones need the built tree)
#   linux-libc-dev      the uAPI headers (Debian's own is the one to keep)
#   gmem-rs-selftests   the selftests, in /usr/lib/gmem-rs/selftests
# REL is the base release plus CONFIG_LOCALVERSION (configs/host.config); the
# package version adds this repository's commit count and id. The boot test
# unpacks the image and selftest packages, boots the image's vmlinuz under
# the virtme-ng runner, loads the modules with modprobe from the package's
# /lib/modules, runs the demo and a few tests (no fault injection: no
# debug options) on both backends.
set -uo pipefail
export GMEM_DEB=1
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts

T0=$(date +%s)
prepare build

DEBOUT=$CACHE/deb
REL=$(cat "$KBUILD/include/config/kernel.release")
dirty=
[ -z "$(git -C "$GMEM_ROOT" status --porcelain)" ] || dirty=+dirty
VERSION=$BASE_KVERSION-$(git -C "$GMEM_ROOT" rev-list --count HEAD).gmemrs.$(git -C "$GMEM_ROOT" rev-parse --short=12 HEAD)$dirty
NPATCHES=$(git -C "$SRC" rev-list --count "base-$BASE_KVERSION..gmem-rs")
export DEBEMAIL="$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>"

# bindeb-pkg writes the packages next to the build directory: move them.
kernel_packages() {
	rm -rf "$DEBOUT" && mkdir -p "$DEBOUT" || return
	rm -f "$CACHE"/*.deb "$CACHE"/*.buildinfo "$CACHE"/*.changes
	kmake KDEB_PKGVERSION="$VERSION" KDEB_CHANGELOG_DIST=bookworm bindeb-pkg \
		>"$DEBOUT/bindeb-pkg.log" 2>&1 || {
		tail -30 "$DEBOUT/bindeb-pkg.log" >&2
		echo "    the whole log: $DEBOUT/bindeb-pkg.log" >&2
		return 1
	}
	mv "$CACHE"/*.deb "$CACHE"/*.buildinfo "$CACHE"/*.changes "$DEBOUT"/
}

# The selftest programs (not their objects) under /usr/lib/gmem-rs/selftests.
selftests_package() {
	local root=$DEBOUT/gmem-rs-selftests dest
	dest=$root/usr/lib/gmem-rs/selftests
	rm -rf "$root" && mkdir -p "$root/DEBIAN" "$dest" || return
	(cd "$STOUT" && find kvm memfd -type f -perm -u+x ! -name '*.o' -print0 |
		xargs -0 cp --parents -t "$dest") || return
	cat >"$root/DEBIAN/control" <<-EOF
		Package: gmem-rs-selftests
		Version: $VERSION
		Architecture: amd64
		Maintainer: $DEBEMAIL
		Depends: libc6
		Recommends: linux-image-$REL
		Section: kernel
		Priority: optional
		Description: KVM and memfd selftests of gmem-rs (guest_memfd in Rust)
		 Upstream's private-memory KVM selftests and the project's own, built for
		 Linux $BASE_KVERSION with the gmem-rs series ($NPATCHES patches).
		 Run them as root on linux-image-$REL, after 'modprobe gmem_rs'.
	EOF
	dpkg-deb --root-owner-group -Zxz --build "$root" \
		"$DEBOUT/gmem-rs-selftests_${VERSION}_amd64.deb" >/dev/null || return
	rm -rf "$root"
}

packages() {
	kernel_packages && selftests_package || return
	(cd "$DEBOUT" && for p in *.deb; do
		printf '    %-60s %s\n' "$p" "$(du -h "$p" | cut -f1)"
	done)
}
phase "build packages (bindeb-pkg)" packages

# Unpack as dpkg would install, then boot the packaged kernel.
boot_test() {
	local root=$DEBOUT/root out=$RESULTS/deb stdir mods
	rm -rf "$root" "$out" && mkdir -p "$root" "$out" || return
	dpkg-deb -x "$DEBOUT/linux-image-${REL}_${VERSION}_amd64.deb" "$root" &&
		dpkg-deb -x "$DEBOUT/gmem-rs-selftests_${VERSION}_amd64.deb" "$root" || return
	[ -f "$root/lib/modules/$REL/modules.dep" ] || {
		echo "    the image package has no modules.dep" >&2
		return 1
	}
	stdir=$root/usr/lib/gmem-rs/selftests mods=$root/lib/modules/$REL
	GMEM_VM_IMAGE=$root/boot/vmlinuz-$REL "$S/vm.sh" "set -e
		test \"\$(uname -r)\" = $REL; uname -r
		modprobe -d $root gmem_rs; modprobe -d $root memfd_inaccessible
		echo \"gmem_rs from \$(modinfo -b $root -F filename gmem_rs)\"
		dmesg | grep gmem_rs:
		$stdir/kvm/x86_64/gmem_demo_test
		rmmod gmem_rs memfd_inaccessible
		$GMEM_ROOT/scripts/guest/run-tests.sh $out $stdir $mods/kernel \
			guest_memfd_test x86_64/gmem_mmap_test x86_64/gmem_errno_test \
			memfd/memfd_inaccessible_test" |
		tee "$out/boot.txt"
	# Every test ran and passed: 3 per backend, memfd's, 3 unloads, the kernel log.
	grep -q '^gmem_demo: done' "$out/boot.txt" && ! grep -q -e '^not ok' -e '# SKIP' "$out/tap.txt" &&
		[ "$(grep -c '^ok' "$out/tap.txt")" = 11 ]
}
phase "boot the packaged kernel" boot_test

dt=$(($(date +%s) - T0))
echo
echo "gmem-rs: Debian packages of Linux $REL ($NPATCHES patches), version $VERSION, in $DEBOUT"
echo "  boot test: demo done, $(grep -c '^ok' "$RESULTS/deb/tap.txt") passed; took $((dt / 60))m$((dt % 60))s"
echo "  install (Debian 12 host): README.md, 'make deb'"
