#!/usr/bin/env bash
# npm run cluster:up [-- --nodes N]: a Kubernetes made of upstream components, idempotent.
# One node (node01, the host) unless --nodes or KVTS_NODES asks for more: node02.. join
# through node.sh. Prints KUBECONFIG=<path> as its last line once the nodes are Ready.
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/daemons.sh"
source "$CLUSTER_DIR/node-config.sh"

[ "$(id -u)" = 0 ] || { echo "cluster:up must run as root (it starts containerd and the kubelet)" >&2; exit 1; }
started=$(date +%s)
NODES=${KVTS_NODES:-1}
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=${2-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --nodes=*) NODES=${1#*=}; shift ;;
    *) echo "unknown argument '$1' (expected --nodes N)" >&2; exit 2 ;;
  esac
done
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || { echo "--nodes (or KVTS_NODES): expected a number of nodes from 1 to 99, got '$NODES'" >&2; exit 2; }

ensure_debian_packages "${APT_PACKAGES[@]}"
ensure_node_modules
BIN=$(k8s_bin)
export PATH="$BIN:$PATH"
CONTAINERD_BIN=$(containerd_bin)
FEATURE_GATES=$(feature_gates)
NODE_IP=$(node_ip)
[ -n "$NODE_IP" ] || { echo "cannot find this machine's IPv4 address (no default route)" >&2; exit 1; }
mkdir -p "$STATE" "$LOGS" "$PIDS" "$(dirname "$CONTAINERD_SOCK")" "$REGISTRY_STORAGE"
bash "$CLUSTER_DIR/pki.sh" "$NODE_IP"

# The registry name upstream's examples use, resolvable from the host (containerd pulls from here).
if ! grep -qE "^[0-9.]+[[:space:]]+registry$" /etc/hosts || ! grep -qE "^$NODE_IP[[:space:]]+registry$" /etc/hosts; then
  sed -i '/[[:space:]]registry$/d' /etc/hosts
  echo "$NODE_IP registry" >> /etc/hosts
fi

# Kernel settings kube-proxy and the CNI bridge rely on.
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true

# crun (the OCI runtime, below) refuses a cgroup v1 host whose unified hierarchy holds a
# controller, as this host's does (hugetlb): give that controller a v1 hierarchy like the rest.
for controller in $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null); do
  mkdir -p "/sys/fs/cgroup/$controller"
  mountpoint -q "/sys/fs/cgroup/$controller" || mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
done

# --- registry --------------------------------------------------------------
cat > "$STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $REGISTRY_STORAGE}
  delete: {enabled: true}
http:
  addr: :$REGISTRY_PORT
EOF
start registry docker-registry serve "$STATE/registry.yml"
wait_for "the registry" 30 curl -sf "http://registry:$REGISTRY_PORT/v2/"
node "$REPO_ROOT/images/build.ts" pause

# --- etcd ------------------------------------------------------------------
start etcd etcd --name "$NODE_NAME" --data-dir "$STATE/etcd" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" \
  --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" --trusted-ca-file "$PKI/ca.crt" --client-cert-auth \
  --quota-backend-bytes 2147483648 --log-level warn

# --- kube-apiserver --------------------------------------------------------
start kube-apiserver kube-apiserver \
  --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
  --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$PKI/ca.crt" \
  --etcd-certfile "$PKI/admin.crt" --etcd-keyfile "$PKI/admin.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --audit-policy-file "$CLUSTER_DIR/audit-policy.yaml" --audit-log-path "$LOGS/audit.log" \
  --audit-log-maxsize 200 --audit-log-maxbackup 1 ${FEATURE_GATES:+--feature-gates "$FEATURE_GATES"}
export KUBECONFIG="$KUBECONFIG_ADMIN"
wait_for "kube-apiserver" 120 kubectl get --raw /readyz
# kube-apiserver's client certificate may use the kubelet API (exec, logs, port-forward).
kubectl create clusterrolebinding kube-apiserver-kubelet-api-admin --clusterrole system:kubelet-api-admin \
  --user kube-apiserver-kubelet-client --dry-run=client -o yaml | kubectl apply -f - >/dev/null

start kube-controller-manager kube-controller-manager \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR" \
  --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --leader-elect=false \
  --controllers '*,bootstrapsigner,tokencleaner'
start kube-scheduler kube-scheduler --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --leader-elect=false

# --- containerd ------------------------------------------------------------
mkdir -p "$CONTAINERD_CERTS_DIR/registry:$REGISTRY_PORT"
cat > "$CONTAINERD_CERTS_DIR/registry:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://registry:$REGISTRY_PORT"
[host."http://registry:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
write_containerd_config "$STATE/containerd.toml" "$CONTAINERD_ROOT" "$CONTAINERD_SOCK" "$CNI_CONF_DIR"
write_cni_config "$CNI_CONF_DIR" "$CNI_BRIDGE" "$NODE_POD_CIDR"
# One masquerade rule for the whole pod range, instead of the bridge plugin's chain of
# rules per pod: each of those is several iptables runs under one lock, which
# serialises pod start-up when many pods start at once.
iptables -t nat -C "${POD_MASQUERADE[@]}" 2>/dev/null || iptables -t nat -A "${POD_MASQUERADE[@]}"
PATH="${CONTAINERD_BIN:+$CONTAINERD_BIN:}$PATH" start containerd containerd --config "$STATE/containerd.toml"
wait_for "containerd" 30 "${CONTAINERD_BIN:+$CONTAINERD_BIN/}ctr" --address "$CONTAINERD_SOCK" version

# --- kubelet ---------------------------------------------------------------
write_kubelet_config "$STATE/kubelet.yaml" kubelet "$CONTAINERD_SOCK" "$NODE_POD_CIDR"
# 2 MiB hugepages for guests backed by them, reserved before the kubelet starts: it counts a
# node's hugepages (its hugepages-2Mi capacity) only at start-up. cluster:down puts back what the
# host had.
HUGEPAGES_2MI=${KVTS_HUGEPAGES_2MI:-128}
[ -f "$STATE/nr_hugepages.host" ] || cat /proc/sys/vm/nr_hugepages > "$STATE/nr_hugepages.host"
echo "$HUGEPAGES_2MI" > /proc/sys/vm/nr_hugepages 2>/dev/null || log "cannot reserve hugepages here; guests on hugepages will not be scheduled"
start kubelet kubelet --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --root-dir "$KUBELET_ROOT" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1

# --- kube-proxy ------------------------------------------------------------
write_kube_proxy_config "$STATE/kube-proxy.yaml" "$NODE_NAME"
start kube-proxy kube-proxy --config "$STATE/kube-proxy.yaml"

wait_for "node $NODE_NAME to be Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
wait_for "the default service account" 60 kubectl get serviceaccount default -n default
# The default StorageClass: local-path-provisioner, its volumes in the cluster's state (cluster:down removes them).
node "$REPO_ROOT/images/build.ts" local-path-provisioner
node "$CLUSTER_DIR/local-path.ts" --path "$STATE/local-path"
# Cluster DNS: Services and pods by name (svc.cluster.local), as on any real cluster.
node "$REPO_ROOT/images/build.ts" coredns
node "$CLUSTER_DIR/coredns.ts" --ip "$CLUSTER_DNS_IP"
# The resource metrics API (kubectl top, HorizontalPodAutoscalers on CPU): metrics-server.
node "$REPO_ROOT/images/build.ts" metrics-server
node "$CLUSTER_DIR/metrics-server.ts" --pki "$PKI"
# Prometheus in the monitoring namespace, scraping kubevirt-ts once it is installed.
node "$REPO_ROOT/images/build.ts" prometheus
node "$CLUSTER_DIR/prometheus.ts"
for (( i = 2; i <= NODES; i++ )); do bash "$CLUSTER_DIR/node.sh" add "$(printf 'node%02d' "$i")"; done
log "cluster up in $(( $(date +%s) - started ))s; logs in $LOGS"
echo "KUBECONFIG=$KUBECONFIG_ADMIN"
