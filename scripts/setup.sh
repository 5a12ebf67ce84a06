#!/usr/bin/env bash
# Install what gmem-rs needs on Debian 12, pinned, only what is missing:
# Debian packages, bindgen-cli from crates.io (built with Debian's cargo),
# virtme-ng from PyPI. Everything but the Debian packages goes to $TOOLS.
set -euo pipefail
. "$(dirname "$0")/common.sh"

BINDGEN_VERSION=0.70.1
VNG_VERSION=1.42
# Rust comes from Debian's rustc-web (which builds Firefox ESR): tested with
# 1.96.0, and at least that. Debian serves only the newest rustc-web, so an
# exact pin would break every fresh machine the day it moves on; a newer one
# is used with a warning (6.12 builds Rust without -Werror).
RUST_VERSION=1.96.0

# name, name=exact-version, or name>=version (installed as the candidate,
# then checked to be at least that).
DEB_PACKAGES=(
	"$BASE_DEB_PKG=$BASE_DEB_VERSION"
	"rustc-web>=$RUST_VERSION"              # rustc, /usr/bin/rustc
	"rust-web-src>=$RUST_VERSION"           # core/alloc sources for the kernel
	"cargo-web>=$RUST_VERSION"              # /usr/bin/cargo: builds bindgen-cli
	"rustfmt-web>=$RUST_VERSION"            # bindgen formats its output; make rustfmtcheck
	"rust-web-clippy>=$RUST_VERSION"        # make CLIPPY=1
	clang-19 lld-19 llvm-19 libclang-19-dev # LLVM=-19 build, bindgen's libclang
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils rsync make gcc libc6-dev
	pkg-config libnuma-dev git
	python3 python3-venv                    # virtme-ng's venv
	qemu-system-x86                         # virtme-ng boots the kernel under TCG
	busybox-static udev                     # udev names the virtio ports vng talks through
	linux-perf                              # make profile: perf in the bench guest
	perl python3-ply python3-git            # make lint: checkpatch.pl and its SPDX check
	dpkg-dev debhelper                      # make deb: bindeb-pkg
)

if ! grep -q '^12' /etc/debian_version 2>/dev/null; then
	echo "    warning: gmem-rs is tested on Debian 12; this is $(cat /etc/debian_version 2>/dev/null || echo 'not Debian')" >&2
fi

# deb_missing: the entries of DEB_PACKAGES not installed at a wanted version.
deb_missing() {
	local p name want have
	for p in "${DEB_PACKAGES[@]}"; do
		name=${p%%[>=]*} want=${p#*=}
		have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$name" 2>/dev/null || true)
		case "$have" in
		ii*)
			have=${have#ii }
			case "$p" in
			"$name") continue ;;
			*'>='*) dpkg --compare-versions "$have" ge "$want" && continue ;;
			*) [ "$have" = "$want" ] && continue ;;
			esac ;;
		esac
		echo "$p"
	done
}

mapfile -t missing < <(deb_missing)
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run 'make setup' as root"
	echo "    installing: ${missing[*]} (log: $CACHE/apt.log)"
	# apt takes exact versions only: a minimum asks for the candidate.
	args=()
	for p in "${missing[@]}"; do
		case "$p" in *'>='*) args+=("${p%%>=*}") ;; *) args+=("$p") ;; esac
	done
	if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${args[@]}"; } >"$CACHE/apt.log" 2>&1; then
		tail -n 20 "$CACHE/apt.log" >&2
		die "apt-get could not install ${missing[*]} (full log: $CACHE/apt.log)"
	fi
	mapfile -t missing < <(deb_missing)
	[ "${#missing[@]}" -eq 0 ] ||
		die "after apt-get, still not at the pinned version: ${missing[*]} (see 'apt-cache policy ${missing[*]%%[>=]*}')"
fi
rust=$(dpkg-query -W -f='${Version}' rustc-web)
case "$rust" in
"$RUST_VERSION"+*) ;;
*) echo "    warning: rustc-web is $rust; gmem-rs is tested with $RUST_VERSION" >&2 ;;
esac

mkdir -p "$TOOLS"
if [ "$("$TOOLS/bin/bindgen" --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
	echo "    installing bindgen-cli $BINDGEN_VERSION with Debian's cargo (about 3 minutes; log: $TOOLS/cargo.log)"
	# Debian's cargo and rustc, and a cargo home of our own: nothing from rustup.
	if ! CARGO_HOME="$TOOLS/cargo-home" RUSTC=/usr/bin/rustc /usr/bin/cargo install --locked --force \
		--root "$TOOLS" bindgen-cli --version "$BINDGEN_VERSION" >"$TOOLS/cargo.log" 2>&1; then
		tail -n 20 "$TOOLS/cargo.log" >&2
		die "cargo could not install bindgen-cli $BINDGEN_VERSION (full log: $TOOLS/cargo.log)"
	fi
fi

if [ "$("$TOOLS/venv/bin/pip" show virtme-ng 2>/dev/null | sed -n 's/^Version: //p')" != "$VNG_VERSION" ]; then
	echo "    installing virtme-ng $VNG_VERSION (log: $TOOLS/pip.log)"
	if ! { /usr/bin/python3 -m venv "$TOOLS/venv" &&
		"$TOOLS/venv/bin/pip" install --disable-pip-version-check "virtme-ng==$VNG_VERSION"; } >"$TOOLS/pip.log" 2>&1; then
		tail -n 20 "$TOOLS/pip.log" >&2
		die "could not install virtme-ng $VNG_VERSION (full log: $TOOLS/pip.log)"
	fi
fi
# What the other scripts call must resolve to what was just installed.
for t in venv/bin/vng venv/bin/virtme-run bin/bindgen; do
	[ "$(command -v "${t##*/}")" = "$TOOLS/$t" ] || die "${t##*/} does not resolve to $TOOLS/$t (PATH=$PATH)"
done
echo "    $(/usr/bin/rustc --version), $(/usr/bin/cargo --version | cut -d' ' -f1-2), $(bindgen --version), clang-19, virtme-ng $VNG_VERSION, $BASE_DEB_PKG $BASE_DEB_VERSION"
