#!/usr/bin/env bash
# npm run cluster:down: stops every process cluster:up started, by PID, and removes the
# containers, network namespaces, mounts and iptables rules it made. Caches stay.
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/daemons.sh"

# The nodes beyond node01 first: their shims match node01's pattern below.
for dir in "$NODES_DIR"/*/; do
  if [ -d "$dir" ]; then bash "$CLUSTER_DIR/node.sh" teardown "$(basename "$dir")"; fi
done
stop kube-proxy & stop kubelet & wait
if [ -S "$CONTAINERD_SOCK" ] && [ -f "$PIDS/containerd" ]; then kill_containers "$CONTAINERD_SOCK"; fi
stop containerd
# Shims outlive containerd; ours are the ones bound to our socket.
pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
for name in kube-scheduler kube-controller-manager kube-apiserver etcd registry; do stop "$name" & done
wait

# Mounts under the kubelet and containerd roots, deepest first.
unmount_under "$KUBELET_ROOT" "$CONTAINERD_ROOT" /run/kubevirt-ts
for netns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$netns" 2>/dev/null || true; done
ip link delete "$CNI_BRIDGE" 2>/dev/null || true
for veth in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^veth' || true); do ip link delete "$veth" 2>/dev/null || true; done

iptables -t nat -D "${POD_MASQUERADE[@]}" 2>/dev/null || true
# kube-proxy removes its own chains; the CNI plugins' chains are named CNI-*.
if bin=$("$CLUSTER_DIR/build-k8s.sh" --cached-only); then "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
for table in nat filter mangle; do
  { iptables -t "$table" -S 2>/dev/null | grep -E '(-j|-A) (CNI-|KUBE-)' | grep '^-A' | sed 's/^-A/-D/' || true; } | while read -r rule; do
    eval iptables -t "$table" "$rule" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
done

if [ -f "$STATE/nr_hugepages.host" ]; then cat "$STATE/nr_hugepages.host" > /proc/sys/vm/nr_hugepages 2>/dev/null || true; fi
rm -rf "$STATE" "$KUBELET_ROOT" /run/kubevirt-ts /var/lib/cni/networks/kubevirt-ts "$CNI_CONF_DIR/10-kubevirt-ts.conflist"
log "cluster down"
