#!/usr/bin/env bash
# Boot the test kernel under virtme-ng (QEMU TCG; the guest gets nested
# SVM, so KVM runs inside it) and run one command there, as root.
#   vm.sh 'COMMAND'     exits with COMMAND's status
#   vm.sh               an interactive shell
# $RESULTS is writable from the guest, at the same path.
set -euo pipefail
. "$(dirname "$0")/common.sh"

VNG=$TOOLS/venv/bin/vng
[ -x "$VNG" ] || die "virtme-ng is not installed (run 'make setup')"
IMAGE=${GMEM_VM_IMAGE:-$KBUILD/arch/x86/boot/bzImage}   # make deb: the packaged one
[ -f "$IMAGE" ] || die "no kernel at $IMAGE (run 'make build')"
mkdir -p "$RESULTS"
# virtme-ng mounts a tmpfs over these in the guest: a cache there is invisible
# to it (no modules, no selftests).
case "$(realpath -m "$CACHE")/" in
/var/tmp/* | /var/cache/* | /var/log/* | /run/* | /dev/*)
	die "GMEM_CACHE=$CACHE is under a directory the test guest cannot see (virtme-ng mounts a tmpfs there); put it elsewhere, e.g. under \$HOME" ;;
esac

# /dev/kvm on the reference hosts is a paravirtual hypervisor that cannot boot
# a normal kernel: TCG only.
cd "$GMEM_ROOT"
CPUS=${GMEM_VM_CPUS:-2} MEMORY=${GMEM_VM_MEMORY:-4G}
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "GMEM_VM_CPUS=$CPUS: want a number of CPUs"
# One CPU per socket, so that a node's CPUs share no cache with another's
# (the kernel warns at boot when a package spans nodes).
# no5lvl: 6.12's identify_cpu() clears the boot CPU's LA57 bit for a moment,
# and under KASAN an interrupt then finds the 5-level direct map outside the
# shadow (a false "wild-memory-access in rcu_is_watching" at boot, now and
# then under TCG, whose CPU has LA57). 4-level paging has no such window.
VNG_ARGS=(--disable-kvm --force-9p --run "$IMAGE" --cpus "$CPUS,sockets=$CPUS,cores=1,threads=1"
	--memory "$MEMORY" --rwdir "$RESULTS"
	--append "panic=-1 oops=panic log_buf_len=32M no5lvl${GMEM_VM_APPEND:+ $GMEM_VM_APPEND}")

# GMEM_VM_NODES=2 (the default): two NUMA nodes, each half the memory and
# half the CPUs (node 1 has none if there is one CPU); guest_memfd's mbind()
# tests place memory on each. 1: one node, as QEMU's default.
case "${GMEM_VM_NODES:-2}" in
1) ;;
2)
	[[ $MEMORY =~ ^([0-9]+)([MG])$ ]] ||
		die "GMEM_VM_MEMORY=$MEMORY: want a size in M or G, e.g. 4G"
	mib=${BASH_REMATCH[1]}
	[ "${BASH_REMATCH[2]}" = M ] || mib=$((mib * 1024))
	[ $((mib % 2)) = 0 ] || die "GMEM_VM_MEMORY=$MEMORY: two nodes need an even number of MiB"
	half=$(((CPUS + 1) / 2))
	VNG_ARGS+=(--numa "$((mib / 2))M,cpus=0-$((half - 1))")
	if [ "$CPUS" -gt 1 ]; then
		VNG_ARGS+=(--numa "$((mib / 2))M,cpus=$half-$((CPUS - 1))")
	else
		VNG_ARGS+=(--numa "$((mib / 2))M")
	fi
	;;
*) die "GMEM_VM_NODES=${GMEM_VM_NODES}: 1 or 2" ;;
esac
# GMEM_VM_QEMU_OPTS: more QEMU options (make bench's -icount pass); vng wants them last.
QEMU_OPTS="${GMEM_QEMU_FIRMWARE:-} ${GMEM_VM_QEMU_OPTS:-}"
[ -z "${QEMU_OPTS// /}" ] || VNG_ARGS+=("--qemu-opts=${QEMU_OPTS# }")
[ "$#" -gt 0 ] || exec "$VNG" "${VNG_ARGS[@]}"

# QEMU reopens stderr by path, which truncates it when it is a log file:
# hand it a pipe instead.
timeout --foreground "${GMEM_VM_TIMEOUT:-3600}" "$VNG" "${VNG_ARGS[@]}" --exec "$1" 2>&1 </dev/null | cat
exit "${PIPESTATUS[0]}"
