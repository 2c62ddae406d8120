#!/usr/bin/env bash
# Builds Prometheus 3 (prometheus and promtool) from the Go module pinned in
# this folder into a cache keyed by version, and prints both versions.
#
#   tests/prometheus3/build.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $PLIMSOLL_TOOLS_CACHE, else ~/.cache/plimsoll-tools.
# Result: CACHE_DIR/prometheus-v<3.x.y>/bin/{prometheus,promtool}. A binary
# already there is not built again; delete the folder to rebuild it.
#
# The version comes from go.mod (github.com/prometheus/prometheus v0.3NN.P is
# Prometheus 3.NN.P). Builds run under nice (BUILD_NICE, 19 by default).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

module=github.com/prometheus/prometheus
module_version=$(cd "$here" && "$go" list -m -f '{{.Version}}' "$module")
if [[ ! $module_version =~ ^v0\.([1-9])([0-9][0-9])\.([0-9]+)$ ]]; then
	echo "build.sh: unexpected $module version $module_version (want v0.3NN.P)" >&2
	exit 1
fi
version=${BASH_REMATCH[1]}.$((10#${BASH_REMATCH[2]})).${BASH_REMATCH[3]}

bin=$cache/prometheus-v$version/bin
mkdir -p "$bin"

if [[ ! -x $bin/prometheus || ! -x $bin/promtool ]]; then
	# The release's commit, as the module proxy records it (empty if it does not).
	revision=$(cd "$here" && "$go" mod download -json "$module@$module_version" |
		sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)",*$/\1/p' | head -1)
	# What Prometheus' .promu.yml sets, but the build date (left out, so two
	# builds of one version are the same).
	pkg=github.com/prometheus/common/version
	ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=${revision:-unknown}"
	ldflags+=" -X $pkg.Branch=HEAD -X $pkg.BuildUser=plimsoll-tests/prometheus3"
	# netgo as in the release build. No builtinassets: without it the web UI is
	# not embedded (web/ui/ui.go serves it from ./web/ui/static, which is not
	# there, so the UI answers 404; the API and /-/ready are unaffected), and
	# the React UI need not be built with npm. remove_all_sd leaves out the
	# service discoveries of plugins/ (AWS, Azure, GCE, Kubernetes...) but file
	# and HTTP (plugins/minimum.go): the tests discover nothing, and it cuts
	# the build by the cloud SDKs.
	tags=${PROMETHEUS_TAGS:-netgo,remove_all_sd}
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "building (module tests/prometheus3): prometheus, promtool $version ($module $module_version)" >&2
	(cd "$here" && nice -n "$nice_level" "$go" build -trimpath -tags "$tags" \
		-ldflags "$ldflags" -o "$tmp/" "$module/cmd/prometheus" "$module/cmd/promtool")
	mv -f "$tmp/prometheus" "$bin/prometheus"
	mv -f "$tmp/promtool" "$bin/promtool"
fi

echo "$bin/prometheus: $("$bin/prometheus" --version 2>&1 | head -1)"
echo "$bin/promtool: $("$bin/promtool" --version 2>&1 | head -1)"
