# Sourced by the build scripts of the Go tools the tests run (tests/kube/build.sh,
# tests/prometheus3/build.sh): the tools cache, the nice level, the go command and
# the build environment they share.
#   cache       $1, else $PLIMSOLL_TOOLS_CACHE, else ~/.cache/plimsoll-tools
#   nice_level  $BUILD_NICE, 19 by default (a cold build takes minutes on two cores)
#   go          the go command (PATH, else /usr/local/go/bin/go)

cache=${1:-${PLIMSOLL_TOOLS_CACHE:-$HOME/.cache/plimsoll-tools}}
nice_level=${BUILD_NICE:-19}

if command -v go >/dev/null 2>&1; then
	go=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
	go=/usr/local/go/bin/go
else
	echo "build.sh: no go command (PATH or /usr/local/go/bin)" >&2
	exit 1
fi

# -mod=mod: go.sum is committed, but let the go command fill in what a newer
# toolchain wants instead of failing. Static binaries, as the projects ship them.
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
