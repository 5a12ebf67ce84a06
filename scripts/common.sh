# Shared settings for the gmem-rs scripts. Sourced, not run.
# shellcheck shell=bash

GMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The pinned base: Debian's linux-source-6.12 package, one exact version.
BASE_DEB_PKG=linux-source-6.12
BASE_DEB_VERSION=6.12.117-1~deb12u1
BASE_KVERSION=6.12.117
BASE_TARBALL=/usr/src/linux-source-6.12.tar.xz

# Everything big lives in a cache outside the work tree, so every clone
# (a session's, CI's) on this machine rebuilds incrementally.
CACHE=${GMEM_CACHE:-$HOME/.cache/gmem-rs}
SRC=${GMEM_SRC:-$CACHE/linux}   # assembled kernel tree (a git repository)
# KCSAN=1 (make check/stress): the data-race detector's kernel, built apart.
# make deb: the kernel it packages (configs/host.config), built apart.
if [ "${GMEM_DEB:-0}" = 1 ]; then
	KBUILD=${GMEM_KBUILD:-$CACHE/build}-deb
elif [ "${GMEM_KCSAN:-0}" = 1 ] && [ "${GMEM_DISTRO:-0}" = 1 ]; then
	echo "gmem-rs: error: KCSAN=1 and DISTRO=1 are two kernels: one at a time" >&2
	exit 1
elif [ "${GMEM_KCSAN:-0}" = 1 ]; then
	KBUILD=${GMEM_KBUILD:-$CACHE/build}-kcsan
# DISTRO=1 (make check): the test kernel with what distributions enable for KVM.
elif [ "${GMEM_DISTRO:-0}" = 1 ]; then
	KBUILD=${GMEM_KBUILD:-$CACHE/build}-distro
else
	KBUILD=${GMEM_KBUILD:-$CACHE/build}   # O= directory of the test kernel
fi
STOUT=$CACHE/selftests      # selftest build output
[ "${GMEM_DEB:-0}" = 1 ] && STOUT=$KBUILD-selftests
TOOLS=$CACHE/tools          # bindgen and other pinned tools
RESULTS=$CACHE/results      # what the guest writes back (vng --rwdir)

# Every script may write into the cache: it exists before anything runs.
mkdir -p "$CACHE" || { echo "gmem-rs: error: cannot create the cache directory $CACHE" >&2; exit 1; }

# Tools come from the project's own install locations (setup.sh) and from
# Debian's, never from the caller's PATH: a rustup cargo/rustc or a pyenv
# python there must not change the build. vng also runs virtme-run through
# the shell, so the venv must be on PATH, not only called by its path.
export PATH="$TOOLS/venv/bin:$TOOLS/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# GMEM_QEMU=10 (make insns QEMU=10): QEMU 10 from bookworm-backports, which
# scripts/qemu10.sh unpacks into the cache, in place of Debian 12's 7.2.
if [ "${GMEM_QEMU:-}" = 10 ]; then
	export PATH="$TOOLS/qemu-10/usr/bin:$PATH"
	# Its own loadable modules, not the 7.2 ones it would refuse noisily.
	export QEMU_MODULE_DIR=$TOOLS/qemu-10/usr/lib/x86_64-linux-gnu/qemu
	# Its own firmware first; the ROMs it finds nowhere else: the system's.
	GMEM_QEMU_FIRMWARE="-L $TOOLS/qemu-10/usr/share/qemu -L $TOOLS/qemu-10/usr/share/seabios"
fi

# The toolchain that builds 6.12 with Rust: Debian's rustc-web, LLVM 19, our bindgen.
KMAKE_VARS=(
	LLVM=-19
	RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
	BINDGEN="$TOOLS/bin/bindgen"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib
)
# The packaged kernel's release is the base plus CONFIG_LOCALVERSION, with
# no "+" for the git tree it is built from.
[ "${GMEM_DEB:-0}" = 1 ] && KMAKE_VARS+=(LOCALVERSION=)
JOBS=${GMEM_JOBS:-$(nproc)}

# make modules: the project's modules, built out of the tree (Kbuild) into
# OOT, with the in-tree layout. Their sources are Kbuild and the files of
# their directories but Kconfig; a kernel built from everything else
# (KERNEL_STAMP, written once kernel and selftests are built) is what they
# build against.
OOT=$KBUILD-oot
KERNEL_STAMP=$KBUILD/.gmem-kernel-sources
OOT_DIRS=(virt/kvm/gmem_rs virt/kvm/gmem_test virt/kvm/gmem_bench)
oot_sources() {
	echo Kbuild
	echo mm/memfd_inaccessible.rs
	git -C "$GMEM_ROOT" ls-files -co --exclude-standard -- "${OOT_DIRS[@]}" | grep -v '/Kconfig$'
}

# A hash of what the kernel is built from: the series, the configs, every
# overlay file but the modules' sources, the scripts that build it, which
# configuration it is, and the compiler.
kernel_sources_hash() {
	{
		(cd "$GMEM_ROOT" &&
			git ls-files -co --exclude-standard -- patches configs arch Documentation include \
				mm rust tools virt scripts/common.sh scripts/build.sh scripts/assemble.sh |
			grep -vxF -f <(oot_sources) | LC_ALL=C sort | tr '\n' '\0' |
			xargs -0r sha1sum)
		echo "debug=${GMEM_DEBUG:-1} kcsan=${GMEM_KCSAN:-0} distro=${GMEM_DISTRO:-0} deb=${GMEM_DEB:-0}"
		/usr/bin/rustc --version
	} | sha1sum | cut -c1-40
}

# Whether the built kernel is the one the sources now describe.
kernel_current() {
	[ -f "$KBUILD/arch/x86/boot/bzImage" ] && [ "$(cat "$KERNEL_STAMP" 2>/dev/null)" = "$(kernel_sources_hash)" ]
}

# Who the assembled commits and the series are from.
export GIT_AUTHOR_NAME="gmem-rs developers" GIT_AUTHOR_EMAIL="gmem-rs@example.org"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

kmake() {
	make -C "$SRC" O="$KBUILD" "${KMAKE_VARS[@]}" -j"$JOBS" "$@"
}

die() {
	echo "gmem-rs: error: $*" >&2
	exit 1
}

# phase NAME CMD...: run one step, print its elapsed time, keep a log.
PHASE_LOG=${PHASE_LOG:-$CACHE/phases.log}
phase() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	printf '==> %-28s ...\n' "$name"
	"$@"
	rc=$?
	local dt=$(( $(date +%s) - t0 ))
	mkdir -p "$(dirname "$PHASE_LOG")"
	printf '%s\t%s\t%d\t%d\n' "$(date -u +%FT%TZ)" "$name" "$dt" "$rc" >> "$PHASE_LOG"
	if [ "$rc" -ne 0 ]; then
		printf '<== %-28s FAILED after %dm%02ds (exit %d)\n' "$name" $((dt / 60)) $((dt % 60)) "$rc"
		exit "$rc"
	fi
	printf '<== %-28s %dm%02ds\n' "$name" $((dt / 60)) $((dt % 60))
}

# The phases every command starts with, each doing only what is stale:
# install what is missing, assemble the tree, configure; with "build", also
# build the kernel and the selftests.
prepare() {
	local s=$GMEM_ROOT/scripts cfg=configure
	[ "${GMEM_DEBUG:-1}" = 1 ] || cfg="configure (no debug options)"
	[ "${GMEM_KCSAN:-0}" = 1 ] && cfg="configure (KCSAN)"
	[ "${GMEM_DISTRO:-0}" = 1 ] && cfg="configure (distro: SEV, Intel)"
	[ "${GMEM_DEB:-0}" = 1 ] && cfg="configure (packaged: host.config)"
	phase "setup (install what is missing)" "$s/setup.sh"
	phase "assemble tree" "$s/assemble.sh"
	phase "$cfg" "$s/build.sh" config
	[ "${1:-}" = build ] || return 0
	phase "build kernel" "$s/build.sh" kernel
	phase "build selftests" "$s/build.sh" selftests
}

# The upstream 6.12 KVM selftests that exercise private memory: make check
# runs each against every guest_memfd backend.
UPSTREAM_KVM_TESTS=(guest_memfd_test set_memory_region_test
	x86_64/private_mem_conversions_test x86_64/private_mem_kvm_exits_test
	pre_fault_memory_test)

# The memfd selftests, run once (not per backend) with memfd_inaccessible
# loaded: ours, and upstream's memfd_test to show memfd_create() unchanged.
MEMFD_TESTS=(memfd/memfd_inaccessible_test memfd/memfd_test)

# The project's own KVM selftests: every .c of ours under selftests/kvm/
# but the benchmark (x86_64/gmem_bench, run by make bench).
project_kvm_tests() {
	git -C "$GMEM_ROOT" ls-files -co --exclude-standard -- 'tools/testing/selftests/kvm/*.c' |
		sed -n 's|^tools/testing/selftests/kvm/\(.*\)\.c$|\1|p' | grep -v -e '^lib/' -e '_bench$' || true
}
