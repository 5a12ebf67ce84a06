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
IMAGE=$KBUILD/arch/x86/boot/bzImage
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
VNG_ARGS=(--disable-kvm --force-9p --run "$IMAGE"
	--cpus "${GMEM_VM_CPUS:-2}" --memory "${GMEM_VM_MEMORY:-4G}"
	--rwdir "$RESULTS" --append "panic=-1 oops=panic log_buf_len=32M")
# GMEM_VM_QEMU_OPTS: more QEMU options (make bench's -icount pass); vng wants them last.
[ -z "${GMEM_VM_QEMU_OPTS:-}" ] || VNG_ARGS+=("--qemu-opts=$GMEM_VM_QEMU_OPTS")
[ "$#" -gt 0 ] || exec "$VNG" "${VNG_ARGS[@]}"

# QEMU reopens stderr by path, which truncates it when it is a log file:
# hand it a pipe instead.
timeout --foreground "${GMEM_VM_TIMEOUT:-3600}" "$VNG" "${VNG_ARGS[@]}" --exec "$1" 2>&1 </dev/null | cat
exit "${PIPESTATUS[0]}"
