# gmem-rs: guest private memory for KVM in Rust-for-Linux, on Linux 6.12.
#
#   make          set up the machine, build the kernel and selftests, boot, demo
#   make check    build what is stale, boot once, run every test
#
# Other targets: stress, bench, profile, insns, lint, setup, tree, build, modules, deb, series,
# series-check, vm, clean. KCSAN=1 (check, stress): on a kernel with the data-race detector;
# DISTRO=1 (check): with what distributions enable for KVM (configs/distro.config).
# See README.md.
# The build lives in $(GMEM_CACHE) (default ~/.cache/gmem-rs), outside the
# work tree, so every clone on this machine rebuilds incrementally.

S := scripts
# make check T="guest_memfd_test kunit": only these tests.
T ?=
# make stress: each gmem_stress_test round this long, with this many vCPUs.
STRESS_SECONDS ?= 60
STRESS_VCPUS ?= 2
KCSAN ?= 0
# make check DISTRO=1: on the test kernel plus configs/distro.config (SEV, Intel).
DISTRO ?= 0
# make profile PROFILE=fault: which workload to profile (allocate, fault, contended).
PROFILE ?= allocate

.PHONY: all demo check stress bench profile insns lint setup tree build modules deb series series-check vm \
	clean
all demo:
	@$(S)/demo.sh

check:
	@GMEM_KCSAN=$(KCSAN) GMEM_DISTRO=$(DISTRO) $(S)/check.sh $(T)

# The stress test in long rounds, and the fault-injection test, on both backends.
stress:
	@GMEM_KCSAN=$(KCSAN) GMEM_RUN_NAME=stress GMEM_STRESS_SECONDS=$(STRESS_SECONDS) \
		GMEM_STRESS_VCPUS=$(STRESS_VCPUS) $(S)/check.sh x86_64/gmem_stress_test \
		x86_64/gmem_failnth_test

# The C and Rust backends side by side, on a kernel without debug options.
bench:
	@$(S)/bench.sh

profile:
	@GMEM_PROFILE=$(PROFILE) $(S)/bench.sh profile

# Exact instruction counts of gmem_bench's timed windows, per kernel function,
# C against Rust (a QEMU plugin counts them).
# QEMU=10: on QEMU 10 from bookworm-backports (fetched into the cache).
QEMU ?=
insns:
	@$(if $(filter 10,$(QEMU)),$(S)/qemu10.sh &&) GMEM_QEMU=$(QEMU) $(S)/bench.sh insns

# rustfmt, clippy and checkpatch --strict over the series (make check runs it too).
lint: build
	@$(S)/lint.sh

setup:
	@$(S)/setup.sh

tree: setup
	@$(S)/assemble.sh

build: tree
	@$(S)/build.sh config
	@$(S)/build.sh kernel
	@$(S)/build.sh selftests

series: tree
	@$(S)/series.sh

# Build the kernel at every patch of the series; the first that fails, by name.
series-check:
	@$(S)/series-check.sh

# The project's modules built out of the kernel tree (Kbuild), against the
# built kernel; make check then loads them, and while only their sources
# change it builds only them. make build goes back to the in-tree ones.
modules:
	@GMEM_KCSAN=$(KCSAN) GMEM_DISTRO=$(DISTRO) $(S)/modules.sh

# Debian packages of the patched kernel (configs/host.config), its modules
# and the selftests, then a boot test of what they install.
deb:
	@$(S)/deb.sh

# An interactive shell in the test kernel.
vm:
	@$(S)/vm.sh

clean:
	rm -rf "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build" "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build-bench" \
		"$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build-kcsan" "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build-distro" \
		"$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/selftests" \
		"$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}"/build*-oot "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}"/build-deb* \
		"$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/deb" out
