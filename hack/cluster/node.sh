#!/usr/bin/env bash
# The local cluster's nodes beyond node01 (npm run cluster:node -- COMMAND NAME):
#   add NAME             joins node NAME (node02..node99) to the running cluster, idempotent
#   start NAME           the same: starts whatever of its containerd, kubelet, kube-proxy is stopped
#   stop NAME            stops its kubelet, virt-handler, kube-proxy and containerd; its other
#                        containers (the guests' QEMUs) keep running, as on a partitioned node
#   stop NAME --kubelet-only
#   remove NAME          kills everything on it, deletes its Node and removes all it added
#   teardown NAME        the same, but keeps the Node object (cluster:down)
# A node is the host's processes in its own network namespace (a veth pair to the host, which
# routes its pod CIDR) and its own mount namespace, in which the kubelet's root, containerd's
# socket directory (/run/kubevirt-ts, also virt-handler's state), the CNI state, the pod
# network namespaces and the pod logs are the node's own directories. So the same hostPaths
# (virt-handler's DaemonSet) name each node's own files, as on separate machines.
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/daemons.sh"
source "$CLUSTER_DIR/node-config.sh"

usage() { echo "usage: node.sh add|start|stop|remove|teardown NAME [--kubelet-only]" >&2; exit 2; }
[ $# -ge 2 ] || usage
COMMAND=$1 NAME=$2
shift 2
[[ "$NAME" =~ ^node([0-9][0-9])$ ]] && INDEX=$((10#${BASH_REMATCH[1]})) && [ "$INDEX" -ge 2 ] ||
  { echo "NAME: expected node02 to node99 (node01 is the host itself), got '$NAME'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "node.sh must run as root" >&2; exit 1; }

DIR="$NODES_DIR/$NAME"
HOST_LINK="kvts-$NAME"
HOST_ADDR="10.99.$INDEX.1"
ADDR="10.99.$INDEX.2"
PODS="10.244.$((INDEX - 1)).0/24"
# The node's namespaces live on as bind mounts of their files (not in /run/netns: the node has
# its own there).
NET_NS="$DIR/ns/net"
MNT_NS="$DIR/ns/mnt"
IN_NET=(nsenter "--net=$NET_NS" --)
IN_NODE=(nsenter "--net=$NET_NS" "--mount=$MNT_NS" --)
# The host sees the node's containerd socket here.
HOST_SOCK="$DIR/run/containerd.sock"
HOST_MASQUERADE=(POSTROUTING -s "$ADDR/32" -o "$(ip -4 -o route get 1.1.1.1 | sed -n 's/.* dev \([^ ]*\).*/\1/p')" -m comment --comment "kubevirt-ts-$NAME" -j MASQUERADE)
# The host's paths that are per node, and the directories under $DIR that stand in for them.
NODE_PATHS=(/var/lib/kubelet:kubelet /run/kubevirt-ts:run /run/netns:netns /var/lib/cni:cni/lib /var/log/pods:log/pods /var/log/containers:log/containers)

export KUBECONFIG="$KUBECONFIG_ADMIN"
with_kubectl() { PATH="$(k8s_bin):$PATH"; }

# The node's own copies of the host's mounts, which it must neither see nor keep alive (node01's
# pod volumes, container root file systems, pod network namespaces), go; its directories go over.
bind_node_paths() {
  unmount_under "${NODE_PATHS[@]%%:*}" "$STATE"
  local entry
  for entry in "${NODE_PATHS[@]}"; do
    mkdir -p "${entry%%:*}"
    mount --bind "$DIR/${entry#*:}" "${entry%%:*}"
  done
  # Shared already, so the kubelet (which makes its root a shared mount) puts no second mount
  # over it: containerd, checking a Bidirectional hostPath's propagation, reads the first.
  mount --make-shared "$KUBELET_ROOT"
}

# The namespace files' directory: a private mount, as a mount namespace's file requires.
ns_dir() {
  mkdir -p "$DIR/ns"
  mountpoint -q "$DIR/ns" && return
  mount --bind "$DIR/ns" "$DIR/ns"
  mount --make-private "$DIR/ns"
}

network_up() {
  if ! mountpoint -q "$NET_NS"; then
    touch "$NET_NS"
    unshare "--net=$NET_NS" true
  fi
  # The pair is made inside the node, its host end sent to this shell's (the host's) namespace.
  ip link show "$HOST_LINK" >/dev/null 2>&1 || "${IN_NET[@]}" ip link add eth0 type veth peer name "$HOST_LINK" netns $$
  ip addr replace "$HOST_ADDR/30" dev "$HOST_LINK"
  ip link set "$HOST_LINK" up
  "${IN_NET[@]}" ip addr replace "$ADDR/30" dev eth0
  "${IN_NET[@]}" ip link set lo up
  "${IN_NET[@]}" ip link set eth0 up
  "${IN_NET[@]}" ip route replace default via "$HOST_ADDR"
  ip route replace "$PODS" via "$ADDR"
  # The node's kernel settings for kube-proxy and the CNI bridge (per network namespace).
  "${IN_NET[@]}" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true
  "${IN_NET[@]}" iptables -t nat -C "${POD_MASQUERADE[@]}" 2>/dev/null || "${IN_NET[@]}" iptables -t nat -A "${POD_MASQUERADE[@]}"
  # The node's own traffic leaving the machine (its pods' is masqueraded to the node's IP first).
  iptables -t nat -C "${HOST_MASQUERADE[@]}" 2>/dev/null || iptables -t nat -A "${HOST_MASQUERADE[@]}"
}

mounts_up() {
  mountpoint -q "$MNT_NS" && return
  local entry
  for entry in "${NODE_PATHS[@]}"; do mkdir -p "$DIR/${entry#*:}"; done
  touch "$MNT_NS"
  unshare "--mount=$MNT_NS" --propagation private bash "$0" __bind "$NAME"
}

# The kubelet's pod cgroups under /NAME (cgroupRoot), apart from node01's /kubepods.
cgroups_up() {
  local dir
  for dir in /sys/fs/cgroup/*/; do
    [ -f "$dir/cgroup.procs" ] && [ "$dir" != /sys/fs/cgroup/unified/ ] || continue
    mkdir -p "$dir$NAME"
    if [ -f "$dir$NAME/cpuset.cpus" ] && [ -z "$(cat "$dir$NAME/cpuset.cpus")" ]; then
      cat "${dir}cpuset.cpus" > "$dir$NAME/cpuset.cpus"
      cat "${dir}cpuset.mems" > "$dir$NAME/cpuset.mems"
    fi
  done
}

add() {
  with_kubectl
  kubectl get --raw /readyz >/dev/null 2>&1 || { echo "the cluster is not up (npm run cluster:up)" >&2; exit 1; }
  mkdir -p "$DIR" "$LOGS" "$PIDS"
  bash "$CLUSTER_DIR/pki.sh" "$(node_ip)" "$NAME" "$ADDR"
  ns_dir
  network_up
  mounts_up
  cgroups_up
  write_containerd_config "$DIR/containerd.toml" "$DIR/containerd" "$CONTAINERD_SOCK" "$DIR/cni/net.d"
  write_cni_config "$DIR/cni/net.d" "kvts$((INDEX - 1))" "$PODS"
  write_kubelet_config "$DIR/kubelet.yaml" "$NAME-kubelet" "$CONTAINERD_SOCK" "$PODS" "cgroupRoot: /$NAME"
  write_kube_proxy_config "$DIR/kube-proxy.yaml" "$NAME"
  if ! running "$NAME-containerd"; then
    local log="$LOGS/$NAME-containerd.log" from
    from=$(( $(stat -c %s "$log" 2>/dev/null || echo 0) + 1 ))
    local bin
    bin=$(containerd_bin)
    PATH="${bin:+$bin:}$PATH" start "$NAME-containerd" "${IN_NODE[@]}" containerd --config "$DIR/containerd.toml"
    # Its CRI service answers only once it has taken back the containers that outlived it (node.sh
    # stop); a kubelet that asks earlier exits.
    wait_for "$NAME's containerd" 60 sh -c "tail -c +$from '$log' | grep -q 'Start streaming server'"
  fi
  start "$NAME-kubelet" "${IN_NODE[@]}" kubelet --config "$DIR/kubelet.yaml" --kubeconfig "$STATE/$NAME-kubelet.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --hostname-override "$NAME" --node-ip "$ADDR" --v 1
  start "$NAME-kube-proxy" "${IN_NODE[@]}" kube-proxy --config "$DIR/kube-proxy.yaml"
  wait_for "node $NAME to be Ready" 120 kubectl wait --for=condition=Ready "node/$NAME" --timeout=5s
  log "node $NAME Ready (IP $ADDR, pods $PODS)"
}

# virt-handler's containers, killed with the kubelet stopped: nothing restarts them.
kill_virt_handler() {
  local id
  for id in $(ctr --address "$HOST_SOCK" -n k8s.io containers ls -q 'labels."io.kubernetes.container.name"==virt-handler' 2>/dev/null); do
    # Containers that ran before have no task left to kill.
    if ctr --address "$HOST_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1; then log "killed $NAME's virt-handler container ${id:0:12}"; fi
  done
}

stop_node() {
  [ $# = 0 ] || [ "$*" = --kubelet-only ] || usage
  stop "$NAME-kubelet"
  [ $# = 0 ] || return 0
  kill_virt_handler
  stop "$NAME-kube-proxy"
  stop "$NAME-containerd"
}

# Processes whose mount namespace is the node's: its shims (the containers have their own).
node_processes() {
  local ns pid
  ns=$(stat -L -c %i "$MNT_NS" 2>/dev/null) || return 0
  for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
    [ "$(stat -L -c %i "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "$pid"
  done
  return 0
}

teardown() {
  stop "$NAME-kubelet"
  stop "$NAME-kube-proxy"
  if running "$NAME-containerd"; then kill_containers "$HOST_SOCK"; fi
  stop "$NAME-containerd"
  # The shims, and whatever of the pods still runs (its containerd was stopped before: node.sh stop).
  local pids; pids=$(node_processes; find /sys/fs/cgroup/*/"$NAME" -name cgroup.procs -exec cat {} + 2>/dev/null)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  # With its last process gone and its file unmounted, the mount namespace and all its mounts go.
  umount "$MNT_NS" "$NET_NS" "$DIR/ns" 2>/dev/null || true
  ip link delete "$HOST_LINK" 2>/dev/null || true
  iptables -t nat -D "${HOST_MASQUERADE[@]}" 2>/dev/null || true
  local dir
  # Killed processes leave their cgroups a moment later.
  for _ in $(seq 1 20); do
    for dir in /sys/fs/cgroup/*/"$NAME"; do
      [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    compgen -G "/sys/fs/cgroup/*/$NAME" >/dev/null || break
    sleep 0.25
  done
  rm -rf "$DIR"
  log "node $NAME torn down"
}

case "$COMMAND" in
  add|start) add ;;
  stop) stop_node "$@" ;;
  teardown) teardown ;;
  remove) teardown; with_kubectl; kubectl delete node "$NAME" --ignore-not-found --wait=false >/dev/null ;;
  __bind) bind_node_paths ;;
  *) usage ;;
esac
