#!/usr/bin/env bash
# QEMU 10 from Debian's bookworm-backports, unpacked into $TOOLS/qemu-10 with
# its firmware, the system's QEMU (Debian 12's 7.2) left as it is. The other
# scripts use it when GMEM_QEMU=10 (common.sh): make insns QEMU=10. It still
# probes the system's module directory for an OpenGL UI, which this machine
# cannot load (libvirglrenderer1), and prints "Only modules from the same
# build can be loaded": harmless, nothing here displays anything.
set -euo pipefail
. "$(dirname "$0")/common.sh"

DEST=$TOOLS/qemu-10
PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
if [ -x "$DEST/usr/bin/qemu-system-x86_64" ] &&
	"$DEST/usr/bin/qemu-system-x86_64" --version | grep -q 'version 10\.'; then
	exit 0
fi
[ "$(id -u)" = 0 ] || die "QEMU 10 is fetched with apt-get: run as root"
mkdir -p "$TOOLS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$work/sources.list"
# A sources list and package lists of our own: the system's apt is unchanged.
apt_opts=(-q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
echo "    fetching QEMU 10 from bookworm-backports (log: $TOOLS/qemu-10.log)"
if ! { apt-get "${apt_opts[@]}" update &&
	(cd "$work/debs" && apt-get "${apt_opts[@]}" download "${PKGS[@]/%//bookworm-backports}"); } \
	>"$TOOLS/qemu-10.log" 2>&1; then
	tail -n 20 "$TOOLS/qemu-10.log" >&2
	die "could not fetch QEMU 10 from bookworm-backports (log: $TOOLS/qemu-10.log)"
fi
# Unpacked aside and moved in whole: an interrupted run leaves no half QEMU.
for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/root"; done
rm -rf "$DEST"
mv "$work/root" "$DEST"
# Its libraries are Debian 12's; anything missing is named here.
missing=$(ldd "$DEST/usr/bin/qemu-system-x86_64" 2>&1 | awk '/not found/ { print $1 }')
[ -z "$missing" ] || die "QEMU 10 needs libraries this machine lacks: $missing"
echo "    $("$DEST/usr/bin/qemu-system-x86_64" --version | head -n 1)"
