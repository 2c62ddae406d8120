#!/usr/bin/env bash
# Builds Thanos (one binary: sidecar, query, rule...) from the Go module pinned
# in this folder into a cache keyed by version, and prints its version.
#
#   tests/thanos/build.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $PLIMSOLL_TOOLS_CACHE, else ~/.cache/plimsoll-tools.
# Result: CACHE_DIR/thanos-v<x.y.z>/bin/thanos. A binary already there is not
# built again; delete the folder to rebuild it.
#
# The version comes from go.mod (github.com/thanos-io/thanos). Builds run under
# nice (BUILD_NICE, 19 by default).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

# Thanos v0.42.5's go.mod says `go 1.26.10`: the go command fetches that
# toolchain (the golang.org/toolchain module, from the module proxy, checked
# against the checksum database) when the installed one is older. Any newer
# installed go is used as it is.
export GOTOOLCHAIN=${GOTOOLCHAIN_THANOS:-go1.26.10+auto}

module=github.com/thanos-io/thanos
module_version=$(cd "$here" && "$go" list -m -f '{{.Version}}' "$module")
if [[ ! $module_version =~ ^v([0-9]+\.[0-9]+\.[0-9]+)$ ]]; then
	echo "build.sh: unexpected $module version $module_version (want vX.Y.Z)" >&2
	exit 1
fi
version=${BASH_REMATCH[1]}

bin=$cache/thanos-v$version/bin
mkdir -p "$bin"

if [[ ! -x $bin/thanos ]]; then
	# The release's commit, as the module proxy records it (empty if it does not).
	revision=$(cd "$here" && "$go" mod download -json "$module@$module_version" |
		sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)",*$/\1/p' | head -1)
	# What Thanos' .promu.yml sets, but the build date and host (left out, so
	# two builds of one version are the same).
	pkg=github.com/prometheus/common/version
	ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=${revision:-unknown}"
	ldflags+=" -X $pkg.Branch=HEAD -X $pkg.BuildUser=plimsoll-tests/thanos"
	# The release's tags (.promu.yml): netgo, and slicelabels (Prometheus'
	# labels.Labels as a slice, which Thanos' code is written for).
	tags=netgo,slicelabels
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "building (module tests/thanos): thanos $version ($module $module_version)" >&2
	(cd "$here" && nice -n "$nice_level" "$go" build -trimpath -tags "$tags" \
		-ldflags "$ldflags" -o "$tmp/thanos" "$module/cmd/thanos")
	mv -f "$tmp/thanos" "$bin/thanos"
fi

echo "$bin/thanos: $("$bin/thanos" --version 2>&1 | head -1)"
