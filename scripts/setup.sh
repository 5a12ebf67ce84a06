#!/usr/bin/env bash
# Install what gmem-rs needs on Debian 12, pinned, only what is missing:
# Debian packages, bindgen-cli from crates.io, virtme-ng from PyPI.
set -euo pipefail
. "$(dirname "$0")/common.sh"

BINDGEN_VERSION=0.70.1
VNG_VERSION=1.42

DEB_PACKAGES=(
	"$BASE_DEB_PKG=$BASE_DEB_VERSION"
	rustc-web rust-web-src                  # rustc 1.96 with core/alloc sources
	clang-19 lld-19 llvm-19 libclang-19-dev # LLVM=-19 build, bindgen's libclang
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils rsync make gcc libc6-dev
	pkg-config libnuma-dev git
	qemu-system-x86                         # virtme-ng boots the kernel under TCG
	busybox-static udev                     # udev names the virtio ports vng talks through
	linux-perf                              # make profile: perf in the bench guest
)

if ! grep -q '^12' /etc/debian_version 2>/dev/null; then
	echo "    warning: gmem-rs is tested on Debian 12; this is $(cat /etc/debian_version 2>/dev/null || echo 'not Debian')" >&2
fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
	name=${p%%=*}
	want=${p#*=}
	have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$name" 2>/dev/null || true)
	case "$have" in
	ii*) [ "$p" = "$name" ] || [ "${have#ii }" = "$want" ] || missing+=("$p") ;;
	*) missing+=("$p") ;;
	esac
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run 'make setup' as root"
	echo "    installing: ${missing[*]}"
	apt-get update -qq
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"$CACHE/apt.log" 2>&1; then
		tail -n 20 "$CACHE/apt.log" >&2
		die "apt-get could not install ${missing[*]} (pinned: $BASE_DEB_PKG=$BASE_DEB_VERSION)"
	fi
fi

mkdir -p "$TOOLS"
if [ "$("$TOOLS/bin/bindgen" --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
	command -v cargo >/dev/null || die "cargo is needed to install bindgen-cli"
	echo "    installing bindgen-cli $BINDGEN_VERSION (about 3 minutes)"
	cargo install -q --locked --force --root "$TOOLS" bindgen-cli --version "$BINDGEN_VERSION"
fi

VNG=$TOOLS/venv/bin/vng
if [ "$("$TOOLS/venv/bin/pip" show virtme-ng 2>/dev/null | sed -n 's/^Version: //p')" != "$VNG_VERSION" ]; then
	echo "    installing virtme-ng $VNG_VERSION"
	python3 -m venv "$TOOLS/venv"
	"$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VNG_VERSION"
fi
echo "    $(/usr/bin/rustc --version), $("$TOOLS/bin/bindgen" --version), clang-19, virtme-ng $VNG_VERSION, $BASE_DEB_PKG $BASE_DEB_VERSION"
