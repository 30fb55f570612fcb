#!/usr/bin/env bash
# Builds the upstream programs that one module under hack/cluster pins (k8s, local-path, coredns,
# metrics-server, prometheus, kwok), from the Go module proxy. A module's programs.sh names them
# (PROGRAMS: name=package), their link flags (LDFLAGS) and build tags (TAGS, comma-separated).
# Output: $KVTS_CACHE/<module>-<pin>/bin, rebuilt only when the pin (go.mod, go.sum, the
# module's own Go files) changes.
# Usage: build-go.sh MODULE [--cached-only]; with --cached-only it prints the directory if the
# programs are built, and builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KVTS_CACHE:-$HOME/.cache/kubevirt-ts}
module=$1
mod="$here/$module"
pin=$(cd "$mod" && cat go.mod go.sum $(find . -name '*.go' | sort) | sha256sum | cut -c1-12)
out="$cache/$module-$pin/bin"
PROGRAMS=()
LDFLAGS=""
TAGS=""
cd "$mod"
source ./programs.sh

have_all() { for p in "${PROGRAMS[@]}"; do [ -x "$out/${p%%=*}" ] || return 1; done; }
if have_all; then echo "$out"; exit 0; fi
[ "${2:-}" = --cached-only ] && exit 1

command -v go >/dev/null || { echo "build-go: Go is required to build $module (it was not found on PATH)" >&2; exit 1; }
mkdir -p "$out.tmp"
i=0
for p in "${PROGRAMS[@]}"; do
  i=$((i+1))
  name=${p%%=*} pkg=${p#*=}
  if [ -x "$out.tmp/$name" ]; then continue; fi
  start=$(date +%s)
  echo "build-go: [$i/${#PROGRAMS[@]}] building $name ($pkg) ..." >&2
  CGO_ENABLED=0 go build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$out.tmp/$name.partial" "$pkg"
  mv "$out.tmp/$name.partial" "$out.tmp/$name"
  echo "build-go: [$i/${#PROGRAMS[@]}] $name done in $(( $(date +%s) - start ))s" >&2
done
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
