#!/usr/bin/env bash
# Builds the consumers of Plimsoll's output that the tests run on the real
# control plane, from the Go modules pinned in this folder (one module each:
# their k8s.io pins differ), into a cache keyed by version, and prints each
# binary's version.
#
#   tests/consumers/build.sh [CACHE_DIR] [NAME...]
#
# NAME is prometheus-operator, argo-rollouts or flagger (all three when none is
# given). CACHE_DIR defaults to $PLIMSOLL_TOOLS_CACHE, else
# ~/.cache/plimsoll-tools ("" for the default when naming consumers).
# Results, each with the consumer's own CRDs beside bin/ (taken from the same
# module, applied by the tests to the control plane):
#   CACHE_DIR/prometheus-operator-v<ver>/bin/prometheus-operator, crds/*.yaml
#   CACHE_DIR/argo-rollouts-v<ver>/bin/rollouts-controller, crds/*.yaml
#   CACHE_DIR/flagger-v<ver>/bin/flagger, crds/crd.yaml
# A binary already there is not built again; delete its folder to rebuild it.
# Builds run under nice (BUILD_NICE, 19 by default). See PLAN.md for how the
# modules were made and README.md for what the tests found.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh" "${1:-}"
shift || true
names=("$@")
if ((${#names[@]} == 0)); then
	names=(prometheus-operator argo-rollouts flagger)
fi

module_version() { # DIR MODULE
	(cd "$1" && "$go" list -m -f '{{.Version}}' "$2")
}
module_json() { # DIR MODULE@VERSION FIELD: a field of `go mod download -json`
	(cd "$1" && "$go" mod download -json "$2" |
		sed -n 's/^[[:space:]]*"'"$3"'": "\(.*\)",*$/\1/p' | head -1)
}

tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# build NAME MODULE PACKAGE OUTPUT LDFLAGS CRD_GLOB...: builds PACKAGE of the
# module pinned in $here/NAME into $cache/NAME-<ver>/bin/OUTPUT and copies the
# CRDs (globs relative to the module's folder in the module cache) to crds/.
build() {
	local name=$1 module=$2 package=$3 output=$4 ldflags=$5
	shift 5
	local dir=$here/$name version
	version=$(module_version "$dir" "$module")
	local top=$cache/$name-$version
	mkdir -p "$top/bin"
	if [[ ! -x $top/bin/$output ]]; then
		echo "building (module tests/consumers/$name): $package ($module $version)" >&2
		rm -rf "$tmp/out" && mkdir -p "$tmp/out"
		(cd "$dir" && nice -n "$nice_level" "$go" build -trimpath \
			-ldflags "-s -w ${ldflags//@VERSION@/${version#v}}" -o "$tmp/out/$output" "$package")
		mv -f "$tmp/out/$output" "$top/bin/$output"
	fi
	if [[ ! -d $top/crds ]]; then
		local src
		src=$(module_json "$dir" "$module@$version" Dir)
		rm -rf "$tmp/crds" && mkdir -p "$tmp/crds"
		local glob f
		for glob in "$@"; do
			for f in "$src"/$glob; do
				cp "$f" "$tmp/crds/"
			done
		done
		chmod -R u+w "$tmp/crds"
		mv "$tmp/crds" "$top/crds"
	fi
	echo "$top/bin/$output: $(version_of "$name" "$top/bin/$output")"
}

version_of() { # NAME BINARY
	case $1 in
	prometheus-operator) "$2" --version 2>&1 | head -1 ;;
	argo-rollouts) "$2" --version 2>&1 | head -1 ;;
	flagger) "$2" -version 2>&1 | head -1 ;;
	esac
}

for name in "${names[@]}"; do
	case $name in
	prometheus-operator)
		module=github.com/prometheus-operator/prometheus-operator
		revision=$(module_json "$here/$name" "$module@$(module_version "$here/$name" "$module")" Hash)
		# What its Makefile's GO_BUILD_LDFLAGS set, but the build date (two builds
		# of one version are the same).
		pkg=github.com/prometheus/common/version
		build "$name" "$module" "$module/cmd/operator" prometheus-operator \
			"-X $pkg.Version=@VERSION@ -X $pkg.Revision=${revision:-unknown} -X $pkg.Branch=HEAD -X $pkg.BuildUser=plimsoll-tests/consumers" \
			'example/prometheus-operator-crd/*.yaml'
		;;
	argo-rollouts)
		# Its VERSION file is stale (1.2.0): the version comes from the module. The
		# proxy records no commit for it, so `version` prints v<ver>+unknown.
		module=github.com/argoproj/argo-rollouts
		build "$name" "$module" "$module/cmd/rollouts-controller" rollouts-controller \
			"-X $module/utils/version.version=@VERSION@" \
			'manifests/crds/*-crd.yaml'
		;;
	flagger)
		module=github.com/fluxcd/flagger
		revision=$(module_json "$here/$name" "$module@$(module_version "$here/$name" "$module")" Hash)
		build "$name" "$module" "$module/cmd/flagger" flagger \
			"-X $module/pkg/version.VERSION=@VERSION@ -X $module/pkg/version.REVISION=${revision:-unknown}" \
			'artifacts/flagger/crd.yaml'
		;;
	*)
		echo "build.sh: unknown consumer $name (prometheus-operator, argo-rollouts, flagger)" >&2
		exit 1
		;;
	esac
done
