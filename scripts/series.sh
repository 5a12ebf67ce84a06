#!/usr/bin/env bash
# make series: write the series with git format-patch (cover letter, base
# commit, PATCH vN prefix) into out/, then check that git am applies it to
# the pristine base and gives the assembled tree.
set -euo pipefail
. "$(dirname "$0")/common.sh"

COVER=$GMEM_ROOT/patches/cover-letter
version=$(sed -n 's/^Version: *//p' "$COVER")
subject=$(sed -n 's/^Subject: *//p' "$COVER")
[ -n "$version" ] && [ -n "$subject" ] || die "patches/cover-letter needs Version: and Subject: lines"
base=base-$BASE_KVERSION
out=$GMEM_ROOT/out/series-v$version
rm -rf "$out"
git -C "$SRC" format-patch -q --cover-letter --base="$base" \
	--subject-prefix="PATCH v$version" -o "$out" "$base..gmem-rs"

# The cover letter: our subject and blurb in place of format-patch's.
cover=$(ls "$out"/0000-*.patch)
blurb=$(mktemp)
trap 'rm -f "$blurb"' EXIT
sed '1,/^$/d' "$COVER" >"$blurb"
python3 - "$cover" "$subject" "$blurb" <<'PY'
import sys
path, subject, blurb = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip("\n")
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", blurb)
open(path, "w").write(text)
PY

# git am on a clean checkout of the base must reproduce the tree exactly.
wt=$(mktemp -d)
git -C "$SRC" worktree add -q --detach "$wt" "$base"
ok=0
if git -C "$wt" am -q $(ls "$out"/*.patch | grep -v /0000-) &&
	[ "$(git -C "$wt" rev-parse 'HEAD^{tree}')" = "$(git -C "$SRC" rev-parse 'gmem-rs^{tree}')" ]; then
	ok=1
fi
git -C "$SRC" worktree remove --force "$wt"
[ "$ok" = 1 ] || die "the series in $out does not git-am onto $base to the assembled tree"
n=$(ls "$out"/*.patch | grep -vc /0000-)
echo "    $out: cover letter + $n patches, PATCH v$version, base-commit $(git -C "$SRC" rev-parse --short "$base") (Linux $BASE_KVERSION)"
echo "    checked: git am onto the pristine base gives the assembled tree"
