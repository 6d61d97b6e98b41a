# `sam build` runs `make build-<Function>` here (BuildMethod: makefile, template.yaml) once per
# function. The first builds every function's release bootstrap in ONE cargo invocation (the
# dependencies compiled once, with one set of features, the links run side by side); the others
# find cargo's output up to date and only copy their bootstrap. So `scripts/test` can build the
# bootstraps beside its other work (`make release`) and `sam build` then only packages them:
# what is deployed is what the tests ran and `scripts/bench` measured. A function's binary is
# its directory under functions/, named after its logical id (LabResultsFunction →
# functions/lab-results; tests/tests/template.rs holds the template to it).

BINARIES := $(notdir $(wildcard functions/*))

.PHONY: release
release:
	cargo lambda build --release --locked $(addprefix --bin ,$(BINARIES))

build-%Function: release
	binary=$$(echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]') && \
	cp "target/lambda/$$binary/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
