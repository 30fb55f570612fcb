#!/usr/bin/env bash
# The README's main command (npm start [-- --nodes N]): the local cluster with kubevirt-ts installed.
# Prints KUBECONFIG=<path> as its last line.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_node_modules
# The virt-launcher image carries the host's QEMU, firmware and ISO tool.
ensure_debian_packages "${LAUNCHER_PACKAGES[@]}"
kubeconfig_line=$(bash hack/cluster/up.sh "$@" | tail -n 1)
export "${kubeconfig_line?}"
PATH="$(hack/cluster/build-k8s.sh):$PATH"
node images/build.ts
node hack/install.ts
log "kubevirt-ts installed by virt-operator (KubeVirt CR Available); images pushed to registry:5000."
log "Try: kubectl apply -f ../shared/upstream-examples/vmi-nocloud.yaml; kubectl get vmi"
echo "$kubeconfig_line"
