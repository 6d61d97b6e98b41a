# `sam build` runs `make build-<Function>` here (BuildMethod: makefile, template.yaml) once per
# function. The first builds every function's release bootstrap in ONE cargo invocation: the
# dependencies are compiled once for all, with one set of features (one cargo-lambda build per
# function recompiled them for each function's own feature set). The others find cargo's
# output up to date and only copy their bootstrap, so what is deployed is what `scripts/test`
# tested and `scripts/bench` measured. A function's binary is its directory under functions/,
# named after its logical id (LabResultsFunction → functions/lab-results, tests/tests/template.rs).

BINARIES := $(notdir $(wildcard functions/*))

.PHONY: release
release:
	cargo lambda build --release --locked $(addprefix --bin ,$(BINARIES))

build-%Function: release
	binary=$$(echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]') && \
	cp "target/lambda/$$binary/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
