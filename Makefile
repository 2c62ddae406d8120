# Plimsoll: `make test` is the one entry point for CI and developers.
CARGO ?= cargo

.PHONY: all build test tools lint fmt crds bench clean

all: build

build:
	$(CARGO) build --release

## test: formatting, lints, and every test (unit, CLI, CRD, property)
test: tools lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --lib --bins --tests --no-fail-fast; \
	else \
		$(CARGO) test --lib --bins --tests --no-fail-fast; \
	fi

## tools: what the tests run for real (promtool from Debian's prometheus package)
tools:
	@command -v promtool >/dev/null 2>&1 || { \
		echo "installing promtool (Debian package prometheus)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	}
	@promtool --version | head -1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: render and reconcile time (criterion), cache memory, Prometheus rule cost vs two designs
bench: tools
	$(CARGO) bench --bench render
	$(CARGO) bench --bench reconcile
	$(CARGO) bench --bench cache_memory
	$(CARGO) bench --bench evaluator_round
	$(CARGO) bench --bench prometheus_cost

## crds: regenerate crds/ from the Rust types (a test fails while they differ)
crds:
	$(CARGO) run --quiet -- crd > crds/plimsoll.dev_servicelevelobjectives.yaml

clean:
	$(CARGO) clean
