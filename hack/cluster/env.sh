# Settings of the local cluster, sourced by the scripts beside it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CLUSTER_DIR="$REPO_ROOT/hack/cluster"
# Runtime state: wiped by cluster:down. Caches (binaries, registry blobs) live in $KVTS_CACHE and stay.
STATE=${KVTS_CLUSTER_STATE:-/var/lib/kubevirt-ts-cluster}
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_ADMIN="$STATE/admin.kubeconfig"
NODE_NAME=node01
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
# kube-system/kube-dns (CoreDNS), the pods' nameserver, as kubeadm places it.
CLUSTER_DNS_IP=10.96.0.10
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
# Pods' traffic leaving the pod range is masqueraded by one rule (up.sh adds it, down.sh removes it).
POD_MASQUERADE=(POSTROUTING -s "$POD_CIDR" ! -d "$POD_CIDR" -m comment --comment kubevirt-ts-pods -j MASQUERADE)
CNI_BRIDGE=kvts0
REGISTRY_PORT=5000
REGISTRY_STORAGE="$KVTS_CACHE/registry"
CONTAINERD_ROOT="$STATE/containerd"
CONTAINERD_SOCK="/run/kubevirt-ts/containerd.sock"
KUBELET_ROOT=/var/lib/kubelet
CNI_BIN_DIR=/usr/lib/cni
CNI_CONF_DIR=/etc/cni/net.d
CONTAINERD_CERTS_DIR=/etc/containerd/certs.d
# The nodes beyond node01 (node.sh): nodeNN, each in its own network and mount namespaces,
# its files under $NODES_DIR/nodeNN. Node NN's IP is 10.99.NN.2, on a veth pair whose host end
# is 10.99.NN.1; its pods are 10.244.(NN-1).0/24.
NODES_DIR="$STATE/nodes"
NODE_LINKS_CIDR=10.99.0.0/16
APT_PACKAGES=(curl gcc libc6-dev containerd runc crun containernetworking-plugins iptables conntrack docker-registry skopeo openssl iproute2 ebtables ethtool socat)

# The address of the default-route interface: the node's InternalIP and the registry's.
node_ip() { ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }

k8s_bin() { "$CLUSTER_DIR/build-k8s.sh"; }

# The container runtime: Debian's containerd 1.6 (the default), or with KVTS_CONTAINERD=2 containerd 2
# built from the Go module proxy (containerd/), which serves image volumes (the apiserver's and the
# kubelet's ImageVolume gate are then on) and container events; KVTS_EVENTED_PLEG=1 also turns on
# the kubelet's event-driven PLEG. The README's local cluster section has what each measured.
CONTAINERD_MAJOR=${KVTS_CONTAINERD:-1}
case "$CONTAINERD_MAJOR" in 1 | 2) ;; *) echo "KVTS_CONTAINERD: 1 or 2, got $CONTAINERD_MAJOR" >&2; exit 1 ;; esac
# containerd_bin: the directory of the containerd to run and its shim, or nothing for the host's.
containerd_bin() { if [ "$CONTAINERD_MAJOR" = 2 ]; then "$CLUSTER_DIR/build-go.sh" containerd; fi; }
# The feature gates the cluster's components get (kube-apiserver's --feature-gates syntax).
feature_gates() {
  local gates=()
  if [ "$CONTAINERD_MAJOR" = 2 ]; then gates+=(ImageVolume=true); fi
  if [ -n "${KVTS_EVENTED_PLEG:-}" ]; then gates+=(EventedPLEG=true); fi
  (IFS=,; echo "${gates[*]}")
}
