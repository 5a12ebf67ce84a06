#!/usr/bin/env bash
# Assemble the kernel tree in $SRC as a git repository: the pristine
# Debian 6.12 base as one commit, then one commit per entry of
# patches/series. Commits are built with plumbing in a private index, so
# the work tree is only touched where a file really changed and the
# out-of-tree build stays incremental.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# Directories of the project that hold kernel files at their in-tree path.
OVERLAY_DIRS=(arch Documentation include mm rust tools virt)
SERIES=$GMEM_ROOT/patches/series

# Fixed dates: the same inputs give the same commit ids, run after run.
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"

git_src() { git -C "$SRC" "$@"; }

check_base_package() {
	local have
	have=$(dpkg-query -W -f='${Version}' "$BASE_DEB_PKG" 2>/dev/null || true)
	[ -n "$have" ] || die "$BASE_DEB_PKG is not installed (run 'make setup')"
	[ "$have" = "$BASE_DEB_VERSION" ] ||
		die "$BASE_DEB_PKG is $have, but gmem-rs is pinned to $BASE_DEB_VERSION.
  Install the pinned version: apt-get install $BASE_DEB_PKG=$BASE_DEB_VERSION"
	[ -f "$BASE_TARBALL" ] || die "$BASE_TARBALL is missing; reinstall $BASE_DEB_PKG"
}

make_base() {
	local tag=base-$BASE_KVERSION
	if git_src rev-parse -q --verify "refs/tags/$tag" >/dev/null 2>&1; then
		return
	fi
	echo "    extracting $BASE_TARBALL into $SRC"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -xJf "$BASE_TARBALL" -C "$SRC" --strip-components=1
	local v
	v=$(make -s -C "$SRC" kernelversion)
	[ "$v" = "$BASE_KVERSION" ] || die "the tarball holds Linux $v, not $BASE_KVERSION"
	git_src init -q -b gmem-rs
	git_src config core.autocrlf false
	git_src config gc.auto 0
	git_src add -A -f .
	git_src commit -q --no-verify -m "Linux $BASE_KVERSION" -m \
		"Pristine source of Debian's $BASE_DEB_PKG $BASE_DEB_VERSION."
	git_src tag "$tag"
}

# Print the overlay files the project has (tracked or new, not ignored).
overlay_files() {
	git -C "$GMEM_ROOT" ls-files -co --exclude-standard -- "${OVERLAY_DIRS[@]}" | sort -u
}

build_series() {
	local parent tree commit idx claimed msg patch
	parent=$(git_src rev-parse "base-$BASE_KVERSION")
	idx=$SRC/.git/gmem-assemble-index
	claimed=$(mktemp)
	msg=$(mktemp)
	patch=$(mktemp)
	trap 'rm -f "$claimed" "$msg" "$patch" "$idx"' RETURN
	GIT_INDEX_FILE=$idx git_src read-tree "$parent"

	local line name f mode blob
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%%#*}
		read -r -a words <<<"$line" || true
		[ "${#words[@]}" -gt 0 ] || continue
		name=${words[0]}
		[ -f "$GMEM_ROOT/patches/$name" ] || die "patches/series names $name, which does not exist"
		git mailinfo -k "$msg" "$patch" <"$GMEM_ROOT/patches/$name" >"$msg.hdr"
		local subject
		subject=$(sed -n 's/^Subject: //p' "$msg.hdr")
		[ -n "$subject" ] || die "patches/$name has no Subject: line"
		for f in "${words[@]:1}"; do
			[ -f "$GMEM_ROOT/$f" ] || die "patches/series: $name adds $f, which does not exist"
			mode=100644
			[ -x "$GMEM_ROOT/$f" ] && mode=100755
			blob=$(git_src hash-object -w --no-filters "$GMEM_ROOT/$f")
			GIT_INDEX_FILE=$idx git_src update-index --add --cacheinfo "$mode,$blob,$f"
			echo "$f" >>"$claimed"
		done
		if [ -s "$patch" ]; then
			GIT_INDEX_FILE=$idx git_src apply --cached --whitespace=nowarn "$patch" ||
				die "patches/$name does not apply"
		fi
		tree=$(GIT_INDEX_FILE=$idx git_src write-tree)
		commit=$( { echo "$subject"; echo; cat "$msg"; } | git_src commit-tree "$tree" -p "$parent")
		parent=$commit
		rm -f "$msg.hdr"
	done <"$SERIES"

	# Every overlay file belongs to exactly one change of the series.
	local dup missing
	dup=$(sort "$claimed" | uniq -d)
	[ -z "$dup" ] || die "patches/series adds these files more than once: $dup"
	missing=$(comm -23 <(overlay_files) <(sort -u "$claimed"))
	[ -z "$missing" ] || die "these files are in no change of patches/series:
$missing"
	git_src update-ref refs/heads/gmem-rs "$parent"
}

check_base_package
make_base
build_series
# Move the work tree to the new tip; git rewrites only changed files.
git_src symbolic-ref HEAD refs/heads/gmem-rs
git_src reset -q --hard gmem-rs
git_src clean -q -fdx -e /.git
echo "    $(git_src log --oneline "base-$BASE_KVERSION..gmem-rs" | wc -l) patches on Linux $BASE_KVERSION, tip $(git_src rev-parse --short gmem-rs)"
