#!/usr/bin/env bash
# Builds the pinned upstream Kubernetes and etcd binaries from the Go module proxy.
# Output: $KVTS_CACHE/k8s-<pin>/bin. Rebuilds only when the pin (go.mod/go.sum) changes.
# With --cached-only it prints the directory if the binaries are built, and builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KVTS_CACHE:-$HOME/.cache/kubevirt-ts}
mod="$here/k8s"
pin=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/cmd/etcd/main.go" | sha256sum | cut -c1-12)
out="$cache/k8s-$pin/bin"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)

have_all() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if have_all; then echo "$out"; exit 0; fi
# --cached-only: report whether the binaries are there, never build them.
[ "${1:-}" = --cached-only ] && exit 1

command -v go >/dev/null || { echo "build-k8s: Go is required to build Kubernetes (it was not found on PATH)" >&2; exit 1; }
k8s_version=$(sed -n 's#^\s*k8s.io/kubernetes \(v[0-9.]*\).*#\1#p' "$mod/go.mod" | head -1)
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
mkdir -p "$out.tmp"
cd "$mod"
i=0
for b in "${bins[@]}"; do
  i=$((i+1))
  if [ -x "$out.tmp/$b" ]; then continue; fi
  pkg="k8s.io/kubernetes/cmd/$b"; [ "$b" = etcd ] && pkg=./cmd/etcd
  start=$(date +%s)
  echo "build-k8s: [$i/${#bins[@]}] building $b ($k8s_version) ..." >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$b.partial" "$pkg"
  mv "$out.tmp/$b.partial" "$out.tmp/$b"
  echo "build-k8s: [$i/${#bins[@]}] $b done in $(( $(date +%s) - start ))s" >&2
done
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
