#!/usr/bin/env bash
# The compile-fail tests (tests/compile-fail/README): each case is built as
# an out-of-tree module against the built kernel and must fail with its
# expected message (or, for a control, build). Prints one TAP line per case;
# the build logs go to $RESULTS/lint/compile-fail/.
set -uo pipefail
. "$(dirname "$0")/common.sh"

CASES=$GMEM_ROOT/tests/compile-fail
OUT=$RESULTS/lint/compile-fail
rm -rf "$OUT"
mkdir -p "$OUT"
[ -f "$KBUILD/Module.symvers" ] || die "no kernel build in $KBUILD (run 'make build')"

for case in "$CASES"/*.rs; do
	name=$(basename "$case" .rs)
	mod=cf_$name
	dir=$OUT/$name
	mkdir -p "$dir"
	expect=$(sed -n '1s|^// expect: ||p' "$case")
	if [ -z "$expect" ]; then
		echo "not ok - compile-fail: $name: no '// expect:' first line"
		continue
	fi
	{
		cat "$case"
		cat <<-RS

		struct CompileFailCase;

		impl kernel::Module for CompileFailCase {
		    fn init(_module: &'static kernel::ThisModule) -> kernel::error::Result<Self> {
		        Ok(Self)
		    }
		}

		kernel::prelude::module! {
		    type: CompileFailCase,
		    name: "$mod",
		    author: "gmem-rs developers",
		    description: "compile-fail case $name",
		    license: "GPL",
		}
		RS
	} >"$dir/$mod.rs"
	echo "obj-m := $mod.o" >"$dir/Kbuild"
	kmake M="$dir" modules >"$dir/build.log" 2>&1
	rc=$?
	if [ "$expect" = ok ]; then
		if [ "$rc" -eq 0 ]; then
			echo "ok - compile-fail: $name builds (control)"
		else
			echo "not ok - compile-fail: $name must build (see $dir/build.log)"
			grep -m5 -E '^error' "$dir/build.log" | sed 's/^/#   /'
		fi
	elif [ "$rc" -eq 0 ]; then
		echo "not ok - compile-fail: $name built, but must fail with /$expect/"
	elif grep -Eq "$expect" "$dir/build.log"; then
		echo "ok - compile-fail: $name is refused: $(grep -m1 -Eo "$expect" "$dir/build.log")"
	else
		echo "not ok - compile-fail: $name failed, but not with /$expect/ (see $dir/build.log)"
		grep -m5 -E '^error' "$dir/build.log" | sed 's/^/#   /'
	fi
done
