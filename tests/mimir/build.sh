#!/usr/bin/env bash
# Builds Grafana Mimir (the one mimir binary) from the Go module pinned in this
# folder into a cache keyed by the module version, and prints its version.
#
#   tests/mimir/build.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $PLIMSOLL_TOOLS_CACHE, else ~/.cache/plimsoll-tools.
# Result: CACHE_DIR/mimir-<module version>/bin/mimir. A binary already there is
# not built again; delete the folder to rebuild it. Builds run under nice
# (BUILD_NICE, 19 by default).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

module=github.com/grafana/mimir
module_version=$(cd "$here" && "$go" list -m -f '{{.Version}}' "$module")
# A pseudo-version (vX.Y.Z-0.YYYYMMDDhhmmss-<12 hex>) names the commit it was
# cut from; a tagged version (should the proxy ever serve one) names none.
if [[ $module_version =~ [.-]([0-9]{14})-([0-9a-f]{12})$ ]]; then
	revision=${BASH_REMATCH[2]}
elif [[ $module_version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	revision=unknown
else
	echo "build.sh: unexpected $module version $module_version" >&2
	exit 1
fi

bin=$cache/mimir-$module_version/bin
mkdir -p "$bin"

if [[ ! -x $bin/mimir ]]; then
	# What Mimir's Makefile (GO_FLAGS) sets: its version package, netgo and
	# stringlabels, static, stripped.
	pkg=$module/pkg/util/version
	ldflags="-s -w -X $pkg.Version=$module_version -X $pkg.Revision=$revision"
	ldflags+=" -X $pkg.Branch=main"
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "building (module tests/mimir): mimir $module_version" >&2
	(cd "$here" && nice -n "$nice_level" "$go" build -trimpath -tags netgo,stringlabels \
		-ldflags "$ldflags" -o "$tmp/mimir" "$module/cmd/mimir")
	mv -f "$tmp/mimir" "$bin/mimir"
fi

echo "$bin/mimir: $("$bin/mimir" -version 2>&1 | head -1)"
