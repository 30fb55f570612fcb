#!/usr/bin/env bash
# The README's main command (npm start): a local cluster with kubevirt-ts installed.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_node_modules
if [ ! -x hack/cluster/up.sh ]; then
  echo "npm start: the local cluster (hack/cluster/up.sh) is not part of this checkout yet, so there is nothing to install into." >&2
  echo "Missing: the local single-node Kubernetes (issue 3) and virt-operator (issue 5). 'npm test' works without them." >&2
  exit 1
fi
exec bash hack/cluster/up.sh
