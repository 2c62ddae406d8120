# Plimsoll: `make test` is the one entry point for CI and developers.
CARGO ?= cargo
PYTHON ?= python3
# The real-control-plane tests run the kubectl built with it (kube-tools); KUBECTL=... names
# another (tests/support/kube.rs reads it).
IMAGE ?= plimsoll:dev
# Helm's engine for the chart tests and `make deploy` (PyPI; no helm binary needed).
HELM_PYTHON_SDK ?= helm-python-sdk==0.2.2

.PHONY: all build test tools kube-tools prometheus3-tools thanos-tools mimir-tools consumers-tools lint fmt crds deploy image bench bench-scale demo demo-tools demo-ui clean

all: build

build:
	$(CARGO) build --release

## test: formatting, lints, and every test (unit, CLI, CRD, property, chart, Argo CD health, and
## tests/kube_real.rs against a real control plane)
test: tools kube-tools prometheus3-tools thanos-tools mimir-tools consumers-tools lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --lib --bins --tests --no-fail-fast; \
	else \
		$(CARGO) test --lib --bins --tests --no-fail-fast; \
	fi
	@# The tests that run on one Prometheus (Debian's 2.42 unless PLIMSOLL_PROMETHEUS=3) and read
	@# its answers: the demo's numbers, local mode, the UI's charts in a browser and the
	@# dashboard's panels, again on Prometheus 3.
	PLIMSOLL_PROMETHEUS=3 $(CARGO) test --no-fail-fast --test demo --test local --test ui_browser --test ui_run --test dashboard_live

## tools: what the tests run for real: promtool (Debian's prometheus), Lua 5.1 (Argo CD's
## dialect) for the health checks, headless Chromium and chromedriver (Debian's chromium,
## chromium-driver) for the UI, VictoriaMetrics and vmalert (Debian's victoria-metrics) for the
## MetricsQL test, and Helm's engine (PyPI helm-python-sdk) for the chart
tools:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v lua5.1 >/dev/null 2>&1 || missing="$$missing lua5.1"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v vmalert >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(PYTHON) -c 'import helm_python' 2>/dev/null || { \
		echo "installing $(HELM_PYTHON_SDK) (PyPI)"; \
		export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1; \
		$(PYTHON) -m pip install --quiet $(HELM_PYTHON_SDK) || \
		$(PYTHON) -m pip install --quiet --break-system-packages $(HELM_PYTHON_SDK); \
	}
	@promtool --version | head -1
	@lua5.1 -v
	@chromedriver --version
	@dpkg-query -W -f '$${Package} $${Version}\n' victoria-metrics
	@$(PYTHON) -c 'import helm_python as h; print("helm-python-sdk", h.__version__, "(Helm", h.helm_sdk_version() + ")")'

## kube-tools: the control plane tests/kube_real.rs runs against: kube-apiserver,
## kube-controller-manager, kube-scheduler and kubectl, etcd and kwok, built from the Go modules
## pinned in tests/kube (needs Go) into $PLIMSOLL_TOOLS_CACHE (default ~/.cache/plimsoll-tools);
## about 8 minutes cold on two idle cores, under a second once built. Prints every version.
kube-tools:
	tests/kube/build.sh

## prometheus3-tools: Prometheus 3.16 (prometheus, promtool), which the Prometheus-backed tests
## run beside Debian's 2.42, built from the Go module pinned in tests/prometheus3 (needs Go) into
## $PLIMSOLL_TOOLS_CACHE (default ~/.cache/plimsoll-tools); minutes cold, under a second once
## built. Prints both versions.
prometheus3-tools:
	tests/prometheus3/build.sh

## thanos-tools: Thanos 0.42.5 (one `thanos` binary: sidecar, query, rule), which
## tests/distributed_reads.rs and tests/thanos_rules.rs run, built from the Go module pinned in
## tests/thanos (needs Go; fetches Go 1.26.10 from the module proxy when the installed go is
## older) into $PLIMSOLL_TOOLS_CACHE (default ~/.cache/plimsoll-tools); minutes cold, under a
## second once built. Prints its version.
thanos-tools:
	tests/thanos/build.sh

## consumers-tools: what acts on the operator's output, run by the tests on the real control
## plane, built from the Go modules pinned in tests/consumers/<name> (needs Go) into
## $PLIMSOLL_TOOLS_CACHE (default ~/.cache/plimsoll-tools) with its own CRDs beside it:
## prometheus-operator v0.93.0 (tests/prometheus_operator.rs) and Argo Rollouts v1.10.1
## (tests/argo_rollouts.rs). Flagger v1.44.0 is pinned too but no test runs it yet, so it is
## built only when asked: `make consumers-tools CONSUMERS=flagger`. Under a second once built;
## prints every version.
CONSUMERS ?= prometheus-operator argo-rollouts
consumers-tools:
	tests/consumers/build.sh "" $(CONSUMERS)

## mimir-tools: Grafana Mimir (one `mimir` binary), which tests/ruler.rs runs monolithic as the
## ruler Plimsoll syncs groups into, built from the Go module pinned in tests/mimir (needs Go; a
## main-branch pseudo-version, the module proxy serves no tagged release) into
## $PLIMSOLL_TOOLS_CACHE (default ~/.cache/plimsoll-tools); minutes cold, under a second once
## built. Prints its version.
mimir-tools:
	tests/mimir/build.sh
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: render and reconcile time (criterion), cache memory, Prometheus rule cost vs two designs
## (a month per query, then K = 50, 200, 1,000 SLOs live: about 35 min; run it alone on the machine)
bench: tools
	$(CARGO) bench --bench render
	$(CARGO) bench --bench reconcile
	$(CARGO) bench --bench cache_memory
	$(CARGO) bench --bench evaluator_round
	$(CARGO) bench --bench prometheus_cost
	$(MAKE) --no-print-directory bench-scale

## bench-scale: the release `plimsoll run`, deployed as the chart does (its RBAC, ServiceAccount
## token, environment), against a real control plane (kube-tools: kube-apiserver, etcd, ...) with
## 1,000 and 10,000 SLOs and a real Prometheus: ready time, time until every rule exists, RSS (the
## operator's, kube-apiserver's, etcd's), API load from the audit log, budget read time
## (SCALE_SLOS=1000 for one size; about 5 and 15 minutes on 2 cores)
bench-scale: kube-tools
	@command -v prometheus >/dev/null 2>&1 && $(PYTHON) -c 'import helm_python' 2>/dev/null || \
		$(MAKE) --no-print-directory tools
	$(CARGO) build --release --bin plimsoll
	$(CARGO) bench --bench operator_scale

## demo: a month of synthetic traffic for three services, a real Prometheus on 127.0.0.1, and
## `plimsoll local --once` printing their budgets and the rollback decision (scripts/demo.sh)
demo: demo-tools
	@$(CARGO) build --quiet --bin plimsoll --no-default-features
	@PLIMSOLL=$${CARGO_TARGET_DIR:-target}/debug/plimsoll scripts/demo.sh

## demo-tools: what the demo needs and nothing else: Prometheus (Debian's prometheus package,
## which brings promtool); the test tools (Chromium, VictoriaMetrics, Helm's engine) are left out
demo-tools:
	@if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then \
		echo "installing Debian package: prometheus"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi

## demo-ui: the demo, then its web UI on http://127.0.0.1:8080/ui until Ctrl-C
## (DEMO_UI_LISTEN=host:port for another address)
demo-ui:
	@DEMO_UI=1 $(MAKE) --no-print-directory demo

## crds: regenerate crds/ and the chart's copy from the Rust types (tests fail while they differ)
crds:
	$(CARGO) run --quiet -- crd > crds/plimsoll.dev_servicelevelobjectives.yaml
	cp crds/plimsoll.dev_servicelevelobjectives.yaml charts/plimsoll/crds/

## deploy: render deploy/plimsoll.yaml from the chart's defaults (a test fails while they differ)
deploy: tools
	$(PYTHON) tests/support/helm.py deploy charts/plimsoll > deploy/plimsoll.yaml.tmp
	mv deploy/plimsoll.yaml.tmp deploy/plimsoll.yaml

## image: the container image (multi-stage Dockerfile: static musl binary, distroless, non-root)
image:
	docker build -t $(IMAGE) .

clean:
	$(CARGO) clean
