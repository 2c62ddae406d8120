#!/usr/bin/env bash
# Builds the control plane the tests run against from the Go modules pinned in
# this folder, into a cache keyed by version, and prints each binary's version.
#
#   tests/kube/build.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $PLIMSOLL_TOOLS_CACHE, else ~/.cache/plimsoll-tools.
# Results:
#   CACHE_DIR/kube-<version>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   CACHE_DIR/etcd-<version>/bin/etcd
#   CACHE_DIR/kwok-<version>/bin/kwok, and stages.yaml beside bin/ (kwok's
#   default Stage objects, for kwok --config)
# A binary already there is not built again; delete its folder to rebuild it.
#
# The versions come from go.mod (k8s.io/kubernetes, go.etcd.io/etcd/server/v3)
# and kwok/go.mod (sigs.k8s.io/kwok). Builds run under nice (BUILD_NICE, 19 by
# default) since a cold build takes minutes on two cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

module_version() { # DIR MODULE
	(cd "$1" && "$go" list -m -f '{{.Version}}' "$2")
}

kube_version=$(module_version "$here" k8s.io/kubernetes)
etcd_version=$(module_version "$here" go.etcd.io/etcd/server/v3)
kwok_version=$(module_version "$here/kwok" sigs.k8s.io/kwok)

if [[ ! $kube_version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
	echo "build.sh: unexpected k8s.io/kubernetes version $kube_version" >&2
	exit 1
fi
kube_major=${BASH_REMATCH[1]}
kube_minor=${BASH_REMATCH[2]}

kube_bin=$cache/kube-$kube_version/bin
etcd_bin=$cache/etcd-$etcd_version/bin
kwok_bin=$cache/kwok-$kwok_version/bin
mkdir -p "$kube_bin" "$etcd_bin" "$kwok_bin"

# What `hack/lib/version.sh` sets in a Kubernetes release build (the git commit
# and tree state are unknown here: the module proxy serves no commit).
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $pkg.gitVersion=$kube_version"
	kube_ldflags+=" -X $pkg.gitMajor=$kube_major -X $pkg.gitMinor=$kube_minor"
done
# Kubernetes' own release tags: grpcnotrace drops x/net/trace from grpc.
kube_tags=selinux,notest,grpcnotrace

tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# go_build MODULE_DIR TAGS LDFLAGS OUT=DEST... -- PACKAGE...: one `go build`
# for all the packages (they share compilation) into a scratch folder, then
# each output (named by go after its package) renamed to its place in the cache.
go_build() {
	local dir=$1 tags=$2 ldflags=$3
	shift 3
	local -a moves=()
	while [[ $1 != -- ]]; do moves+=("$1"); shift; done
	shift
	rm -rf "$tmp/out" && mkdir -p "$tmp/out"
	echo "building (module tests/kube${dir#"$here"}): $*" >&2
	(cd "$dir" && nice -n "$nice_level" "$go" build -trimpath -tags "$tags" \
		-ldflags "$ldflags" -o "$tmp/out/" "$@")
	local m
	for m in "${moves[@]}"; do
		mv -f "$tmp/out/${m%%=*}" "${m#*=}"
	done
}

# Control plane and etcd: one module graph, one go build.
moves=()
packages=()
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	if [[ ! -x $kube_bin/$name ]]; then
		moves+=("$name=$kube_bin/$name")
		packages+=("k8s.io/kubernetes/cmd/$name")
	fi
done
if [[ ! -x $etcd_bin/etcd ]]; then
	# etcd's server binary is the module's root package (main.go); go names
	# its output "server".
	moves+=("server=$etcd_bin/etcd")
	packages+=(go.etcd.io/etcd/server/v3)
fi
if ((${#packages[@]})); then
	go_build "$here" "$kube_tags" "$kube_ldflags" "${moves[@]}" -- "${packages[@]}"
fi

if [[ ! -x $kwok_bin/kwok ]]; then
	go_build "$here/kwok" "" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$kwok_version" \
		"kwok=$kwok_bin/kwok" -- sigs.k8s.io/kwok/cmd/kwok
fi

# kwok does nothing without Stage objects. These are the ones kwokctl starts it
# with by default (node-fast with lease heartbeats, pod-fast), taken from the
# same module; they go with `kwok --config=<this> --node-lease-duration-seconds=40`.
kwok_stages=$cache/kwok-$kwok_version/stages.yaml
if [[ ! -s $kwok_stages ]]; then
	kwok_dir=$(cd "$here/kwok" && "$go" mod download -json sigs.k8s.io/kwok |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	for f in node/fast/node-initialize.yaml \
		node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		echo "---"
		cat "$kwok_dir/kustomize/stage/$f"
	done >"$tmp/stages.yaml"
	mv -f "$tmp/stages.yaml" "$kwok_stages"
fi

for name in kube-apiserver kube-controller-manager kube-scheduler; do
	echo "$kube_bin/$name: $("$kube_bin/$name" --version)"
done
echo "$kube_bin/kubectl: $("$kube_bin/kubectl" version --client | head -1)"
echo "$etcd_bin/etcd: $("$etcd_bin/etcd" --version | tr '\n' ' ' | sed 's/ *$//')"
echo "$kwok_bin/kwok: $("$kwok_bin/kwok" --version)"
