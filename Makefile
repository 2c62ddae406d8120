# Plimsoll: `make test` is the one entry point for CI and developers.
CARGO ?= cargo

.PHONY: all build test lint fmt crds check-crds clean

all: build

build:
	$(CARGO) build --release

## test: formatting, lints, and every test (unit, CLI, CRD, property)
test: lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --all-targets --no-fail-fast; \
	else \
		$(CARGO) test --all-targets --no-fail-fast; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate crds/ from the Rust types (a test fails while they differ)
crds:
	$(CARGO) run --quiet -- crd > crds/plimsoll.dev_servicelevelobjectives.yaml

clean:
	$(CARGO) clean
