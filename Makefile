# gmem-rs: guest private memory for KVM in Rust-for-Linux, on Linux 6.12.
#
#   make          set up the machine, build the kernel and selftests, boot, demo
#   make check    build what is stale, boot once, run every test
#
# Other targets: bench, profile, lint, setup, tree, build, series, series-check, vm,
# clean.
# See README.md.
# The build lives in $(GMEM_CACHE) (default ~/.cache/gmem-rs), outside the
# work tree, so every clone on this machine rebuilds incrementally.

S := scripts
# make check T="guest_memfd_test kunit": only these tests.
T ?=

.PHONY: all demo check bench profile lint setup tree build series series-check vm clean
all demo:
	@$(S)/demo.sh

check:
	@$(S)/check.sh $(T)

# The C and Rust backends side by side, on a kernel without debug options.
bench:
	@$(S)/bench.sh

profile:
	@$(S)/bench.sh profile

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

# An interactive shell in the test kernel.
vm:
	@$(S)/vm.sh

clean:
	rm -rf "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build" "$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/build-bench" \
		"$${GMEM_CACHE:-$$HOME/.cache/gmem-rs}/selftests" out
