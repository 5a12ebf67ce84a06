#!/usr/bin/env bash
# make modules: the project's modules (Kbuild) built out of the kernel tree,
# against the built test kernel, into $KBUILD-oot with the in-tree layout.
# From then on make check loads these, and while only their sources change it
# rebuilds only them, without the tree (scripts/check.sh); a full build
# (make, make build) goes back to the in-tree ones.
set -uo pipefail
. "$(dirname "$0")/common.sh"

[ -f "$KBUILD/Module.symvers" ] || die "no kernel build in $KBUILD: run 'make build' first"
kernel_current ||
	die "the kernel's sources changed since $KBUILD was built: run 'make build' (modules rebuild only modules)"

# The symbols the Kbuild files name must be modules in the built kernel.
(cd "$GMEM_ROOT" && grep -ho 'CONFIG_[A-Z0-9_]*' Kbuild $(printf '%s/Makefile ' "${OOT_DIRS[@]}")) | sort -u |
	while read -r sym; do
		grep -qx "$sym=m" "$KBUILD/.config" || {
			echo "gmem-rs: error: $sym is not =m in $KBUILD/.config" >&2
			exit 1
		}
	done || exit 1

mkdir -p "$OOT"
# By content, with a new time: kbuild then rebuilds what changed, whichever
# clone (the cache is shared) built last.
while IFS= read -r f; do
	cmp -s "$GMEM_ROOT/$f" "$OOT/$f" || install -D -m 644 "$GMEM_ROOT/$f" "$OOT/$f" ||
		die "cannot copy $f to $OOT"
done < <(oot_sources)
t=$(date +%s)
if ! kmake M="$OOT" modules >"$OOT/build.log" 2>&1; then
	grep -E -A5 '^(error|.*: error)' "$OOT/build.log" | head -n 30 >&2
	die "the out-of-tree build failed (log: $OOT/build.log)"
fi
touch "$OOT/.active"
echo "    $(cd "$OOT" && find . -name '*.ko' | sort | sed 's|^\./||' | tr '\n' ' ')($(($(date +%s) - t)) s, in $OOT)"
