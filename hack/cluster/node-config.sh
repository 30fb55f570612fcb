# The configuration files of a node's containerd, CNI, kubelet and kube-proxy, sourced by
# up.sh (node01, on the host) and node.sh (the nodes beyond it, each in its own namespaces).

# write_containerd_config FILE ROOT SOCKET CNI_CONF_DIR
write_containerd_config() {
  local file=$1 root=$2 sock=$3 cni_conf_dir=$4
  if [ "$CONTAINERD_MAJOR" = 2 ]; then write_containerd2_config "$@"; return; fi
  cat > "$file" <<EOF
version = 2
root = "$root/root"
state = "$root/state"
[grpc]
  address = "$sock"
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
    conf_dir = "$cni_conf_dir"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONTAINERD_CERTS_DIR"
EOF
}

# write_containerd2_config FILE ROOT SOCKET CNI_CONF_DIR: the same for containerd 2 (its CRI plugins
# split in two). runc, not crun: Debian's crun 1.8.1 refuses the OCI runtime spec versions (1.2 and
# later) that containerd 2 writes, the pod sandbox's included.
write_containerd2_config() {
  local file=$1 root=$2 sock=$3 cni_conf_dir=$4
  cat > "$file" <<EOF
version = 3
root = "$root/root"
state = "$root/state"
[grpc]
  address = "$sock"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry:$REGISTRY_PORT/kubevirt-ts/pause:devel"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$CONTAINERD_CERTS_DIR"
[plugins.'io.containerd.cri.v1.runtime']
  enable_unprivileged_ports = false
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$cni_conf_dir"
EOF
}

# write_cni_config DIR BRIDGE SUBNET: the node's pods on one bridge, addressed from its pod CIDR.
write_cni_config() {
  local dir=$1 bridge=$2 subnet=$3
  mkdir -p "$dir"
  cat > "$dir/10-kubevirt-ts.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubevirt-ts",
  "plugins": [
    {
      "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$subnet" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
EOF
}

# write_kubelet_config FILE CERT SOCKET POD_CIDR [LINE...]: CERT names the serving certificate
# in $PKI; the LINEs are appended (settings only the extra nodes have).
write_kubelet_config() {
  local file=$1 cert=$2 sock=$3 pod_cidr=$4; shift 4
  cat > "$file" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/$cert.crt
tlsPrivateKeyFile: $PKI/$cert.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$sock
podCIDR: $pod_cidr
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
  local gates
  gates=$(feature_gates)
  if [ -n "$gates" ]; then echo "featureGates: {${gates//=/: }}" >> "$file"; fi
  if [ $# -gt 0 ]; then printf '%s\n' "$@" >> "$file"; fi
}

# write_kube_proxy_config FILE NODE_NAME
write_kube_proxy_config() {
  cat > "$1" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $2
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
conntrack: {maxPerCore: 0}
EOF
}
