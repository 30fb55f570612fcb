#!/usr/bin/env bash
# npm run cluster:up: a single-node Kubernetes made of upstream components, idempotent.
# Prints KUBECONFIG=<path> as its last line once the node is Ready.
source "$(dirname "$0")/env.sh"

[ "$(id -u)" = 0 ] || { echo "cluster:up must run as root (it starts containerd and the kubelet)" >&2; exit 1; }
started=$(date +%s)

running() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

# The node's daemons share one CPU cgroup, as a systemd node's system.slice. Left in the root
# cgroup, each of their threads would weigh as much as all pods together (kubepods), and in a
# burst of VMI starts the pods that drive it (virt-handler, the launchers) waited for the CPU
# ~80% of the time they were ready to run.
system_cpu_cgroup() {
  local dir
  if [ -f /sys/fs/cgroup/cpu/cgroup.procs ]; then dir=/sys/fs/cgroup/cpu/system.slice
  elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup/system.slice
  else return 0
  fi
  mkdir -p "$dir" 2>/dev/null && echo "$dir" || true
}
SYSTEM_CGROUP=$(system_cpu_cgroup)

# start NAME CMD...: runs a component in its own session, logging to $LOGS/NAME.log.
# GOGC: the Go daemons here (and containerd's shims, which inherit it) collect garbage a
# quarter as often as by default. Memory is plentiful on this node and CPU is not: in a
# burst of VMIs, garbage collection took 11-15% of the CPU of kube-apiserver, containerd
# and the shims.
start() {
  local name=$1; shift
  if running "$name"; then return; fi
  (
    [ -z "$SYSTEM_CGROUP" ] || echo "$BASHPID" 2>/dev/null > "$SYSTEM_CGROUP/cgroup.procs" || true
    GOGC=400 exec setsid "$@"
  ) >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out after ${limit}s waiting for $what (logs: $LOGS)" >&2; return 1; fi
    sleep 0.5
  done
}

ensure_debian_packages "${APT_PACKAGES[@]}"
ensure_node_modules
BIN=$(k8s_bin)
export PATH="$BIN:$PATH"
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
  --audit-log-maxsize 200 --audit-log-maxbackup 1
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
cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT/root"
state = "$CONTAINERD_ROOT/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry:$REGISTRY_PORT/kubevirt-ts/pause:devel"
  enable_unprivileged_ports = false
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which sandboxed hosts may withhold.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # crun, not runc, behind containerd's runc shim: the shim runs the OCI runtime several
        # times per container, and runc, a Go program, spent nearly a quarter of the node's
        # CPU in a burst of 30 VMIs (measured with perf) starting and re-reading the host's
        # mount table each time.
        BinaryName = "/usr/bin/crun"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONTAINERD_CERTS_DIR"
EOF
mkdir -p "$CNI_CONF_DIR"
cat > "$CNI_CONF_DIR/10-kubevirt-ts.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubevirt-ts",
  "plugins": [
    {
      "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$NODE_POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
EOF
# One masquerade rule for the whole pod range, instead of the bridge plugin's chain of
# rules per pod: each of those is several iptables runs under one lock, which
# serialises pod start-up when many pods start at once.
iptables -t nat -C "${POD_MASQUERADE[@]}" 2>/dev/null || iptables -t nat -A "${POD_MASQUERADE[@]}"
start containerd containerd --config "$STATE/containerd.toml"
wait_for "containerd" 30 ctr --address "$CONTAINERD_SOCK" version

# --- kubelet ---------------------------------------------------------------
cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
podCIDR: $NODE_POD_CIDR
resolvConf: /etc/resolv.conf
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: cluster.local
serializeImagePulls: false
maxPods: 110
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
# etcd, kube-apiserver, the controllers, containerd and the kubelet run on this node outside
# pods. Reserving CPU for them also lowers the weight of all pods together against them
# (kubepods' cpu.shares follow the allocatable CPU), so a burst of pods starting cannot
# starve the processes that start them.
kubeReserved: {cpu: 500m}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 5s
EOF
# 2 MiB hugepages for guests backed by them, reserved before the kubelet starts: it counts a
# node's hugepages (its hugepages-2Mi capacity) only at start-up. cluster:down puts back what the
# host had.
HUGEPAGES_2MI=${KVTS_HUGEPAGES_2MI:-128}
[ -f "$STATE/nr_hugepages.host" ] || cat /proc/sys/vm/nr_hugepages > "$STATE/nr_hugepages.host"
echo "$HUGEPAGES_2MI" > /proc/sys/vm/nr_hugepages 2>/dev/null || log "cannot reserve hugepages here; guests on hugepages will not be scheduled"
start kubelet kubelet --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --root-dir "$KUBELET_ROOT" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1

# --- kube-proxy ------------------------------------------------------------
cat > "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
conntrack: {maxPerCore: 0}
EOF
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
log "cluster up in $(( $(date +%s) - started ))s; logs in $LOGS"
echo "KUBECONFIG=$KUBECONFIG_ADMIN"
