# `sam build` runs `make build-<Function>` here (BuildMethod: makefile, template.yaml) once per
# function. The first builds every function's release bootstrap in ONE cargo invocation (the
# dependencies compiled once, with one set of features, the links run side by side); the others
# find cargo's output up to date and only copy their bootstrap. So `scripts/test` can build the
# bootstraps beside its other work (`make release`) and `sam build` then only packages them:
# what is deployed is what the tests ran and `scripts/bench` measured. A function's binary is
# its directory under functions/, named after its logical id (LabResultsFunction →
# functions/lab-results; tests/tests/template.rs holds the template to it).
#
# Thin LTO is done by the linker, not by rustc (README, "Testing: what each step costs"):
# every crate is compiled to LLVM bitcode (-Clinker-plugin-lto), and rustc's own lld (shipped
# with the toolchain, the same LLVM) optimises across crates at the link, keeping each module's
# result in a cache that all the functions share. rustc's thin LTO (the profile's `lto`, now
# off) redid that work for every function on every build: after a change in common/, 17 links
# of ~50 s of CPU each; from the cache, what did not change is not optimised again.

BINARIES := $(notdir $(wildcard functions/*))
TARGET := x86_64-unknown-linux-gnu
OUT := target/$(TARGET)/release
LINKER_DIR := $(shell rustc --print sysroot)/lib/rustlib/$(TARGET)/bin/gcc-ld
# provided.al2023's C library: a bootstrap needing a newer symbol would not start there.
GLIBC_MAX := 2.34

RELEASE_RUSTFLAGS := -Clinker-plugin-lto -Clinker=cc -Clink-arg=-fuse-ld=lld \
	-Clink-arg=-B$(LINKER_DIR) -Clink-arg=-Wl,--lto-O2 \
	-Clink-arg=-Wl,--thinlto-cache-dir=target/thinlto-cache \
	-Clink-arg=-Wl,--thinlto-cache-policy=cache_size_bytes=1g:prune_after=168h

.PHONY: release
release:
	env -u RUSTC_WORKSPACE_WRAPPER RUSTFLAGS='$(RELEASE_RUSTFLAGS)' \
		cargo build --release --locked --target $(TARGET) $(addprefix --bin ,$(BINARIES))
	scripts/check-glibc $(GLIBC_MAX) $(addprefix $(OUT)/,$(BINARIES))

build-%Function: release
	binary=$$(echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]') && \
	cp "$(OUT)/$$binary" "$(ARTIFACTS_DIR)/bootstrap"
