#!/usr/bin/env bash
# make lint: what a reviewer runs before reading the series.
#   rustfmt      the project's Rust files, with the kernel's .rustfmt.toml
#   clippy       the kernel crate and the Rust modules built with CLIPPY=1
#                (the kernel's lints); any warning fails
#   compile-fail tests/compile-fail: rules of the abstractions that only the
#                compiler checks, each a module that must fail to build
#   checkpatch   scripts/checkpatch.pl --strict on every patch of the series,
#                which also wants each patch Signed-off-by its author
# Needs the assembled tree and a built kernel (make build). Prints one TAP
# line per check to stdout (check.sh adds them to its results); the details
# go to $RESULTS/lint/.
set -uo pipefail
. "$(dirname "$0")/common.sh"

OUT=$RESULTS/lint
rm -rf "$OUT"
mkdir -p "$OUT"
[ -d "$KBUILD/rust" ] || die "no kernel build in $KBUILD (run 'make build')"

fails=0
result() { # result NAME LOG: ok if LOG is empty
	if [ -s "$2" ]; then
		echo "not ok - lint: $1 ($(wc -l <"$2") lines in $2)"
		sed 's/^/#   /' "$2" | head -n 20
		fails=$((fails + 1))
	else
		echo "ok - lint: $1"
	fi
}

# checkpatch runs scripts/spdxcheck.py with the python3 on PATH: Debian's, which has ply.
export PATH=/usr/bin:$PATH

mapfile -t rs < <(git -C "$GMEM_ROOT" ls-files -co --exclude-standard -- '*.rs')
(cd "$GMEM_ROOT" && rustfmt --config-path "$SRC/.rustfmt.toml" --check "${rs[@]}") \
	>"$OUT/rustfmt.txt" 2>&1
result rustfmt "$OUT/rustfmt.txt"

# The Rust objects of the series: the kernel crate and every module we add.
mapfile -t objs < <(printf '%s\n' "${rs[@]}" | grep -v '^rust/' | sed 's/\.rs$/.o/')
kmake CLIPPY=1 rust/kernel.o "${objs[@]}" >"$OUT/clippy-build.txt" 2>&1 ||
	echo "the CLIPPY=1 build failed: see $OUT/clippy-build.txt" >>"$OUT/clippy-build.txt"
grep -E -A4 '^(warning|error)' "$OUT/clippy-build.txt" >"$OUT/clippy.txt" || true
result clippy "$OUT/clippy.txt"

# The rules only the compiler checks: each case must fail to build, with its message.
if ! "$(dirname "$0")/compile-fail.sh" >"$OUT/compile-fail.tap" 2>&1 ||
	! grep -q '^ok ' "$OUT/compile-fail.tap"; then
	echo "not ok - compile-fail: the cases did not run ($OUT/compile-fail.tap)" >>"$OUT/compile-fail.tap"
fi
cat "$OUT/compile-fail.tap"
grep -q '^not ok' "$OUT/compile-fail.tap" && fails=$((fails + 1))

# FILE_PATH_CHANGES (does MAINTAINERS need updating?) fires for every new
# file; the series says who maintains what in its cover letter.
rm -rf "$OUT/patches"
git -C "$SRC" format-patch -q -o "$OUT/patches" "base-$BASE_KVERSION..gmem-rs"
for p in "$OUT/patches"/*.patch; do
	(cd "$SRC" && ./scripts/checkpatch.pl --strict --terse --no-summary --quiet \
		--ignore FILE_PATH_CHANGES "$p") 2>&1 |
		sed "s|^$OUT/patches/||"
done >"$OUT/checkpatch.txt"
result "checkpatch --strict, Signed-off-by" "$OUT/checkpatch.txt"

[ "$fails" -eq 0 ]
