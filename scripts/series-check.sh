#!/usr/bin/env bash
# make series-check: build the kernel and its modules at every commit of the
# series, in order, and report the first commit that does not build. It uses
# a work tree and a build directory of its own (the test kernel's stay as
# they are), with the tip's configuration at every commit: each commit only
# rebuilds what it changed.
set -uo pipefail
. "$(dirname "$0")/common.sh"
S=$GMEM_ROOT/scripts

T0=$(date +%s)
prepare

WT=$CACHE/series-check/linux
B=$CACHE/series-check/build
LOG=$CACHE/series-check/build.log
mkdir -p "$B"
# A work tree left from an earlier tree (assemble rebuilt it) is made anew.
if ! git -C "$WT" rev-parse -q --verify "base-$BASE_KVERSION" >/dev/null 2>&1; then
	rm -rf "$WT"
	git -C "$SRC" worktree prune
	git -C "$SRC" worktree add -q --detach "$WT" "base-$BASE_KVERSION" ||
		die "cannot make the work tree $WT"
fi
cp "$KBUILD/.config" "$CACHE/series-check/tip.config"
# Commits built before with the same configuration: a commit id names its
# whole tree and history, so a rerun after a fix to patch N starts at N.
BUILT=$CACHE/series-check/built
cfg=$(sha1sum <"$CACHE/series-check/tip.config" | cut -c1-40)
touch "$BUILT"
resuming=1

# build_at COMMIT: the kernel of that commit, with the tip's options that
# exist there (Kconfig drops the others).
build_at() {
	git -C "$WT" checkout -q --detach "$1" &&
		cp "$CACHE/series-check/tip.config" "$B/.config" &&
		GMEM_SRC=$WT GMEM_KBUILD=$B bash -c '. "$0/common.sh"; kmake -s olddefconfig && kmake -s bzImage modules' "$S" \
			>"$LOG" 2>&1
}

n=0
total=$(git -C "$SRC" rev-list --count "base-$BASE_KVERSION..gmem-rs")
for c in $(git -C "$SRC" rev-list --reverse "base-$BASE_KVERSION..gmem-rs"); do
	n=$((n + 1))
	subject=$(git -C "$SRC" log -1 --format=%s "$c")
	if [ $resuming = 1 ] && grep -qx "$c $cfg" "$BUILT"; then
		echo "ok $n - $subject (built before, same commit and configuration)"
		continue
	fi
	resuming=0
	t=$(date +%s)
	if ! build_at "$c"; then
		echo "not ok $n - $subject"
		grep -E 'error|Error' "$LOG" | head -n 20 | sed 's/^/    /'
		echo "series-check: patch $n of $total does not build (log: $LOG)"
		exit 1
	fi
	echo "$c $cfg" >>"$BUILT"
	echo "ok $n - $subject ($(($(date +%s) - t))s)"
done
dt=$(( $(date +%s) - T0 ))
echo "series-check: all $total patches build, each on the one before ($((dt / 60))m$((dt % 60))s)"
