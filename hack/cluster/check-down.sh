#!/usr/bin/env bash
# Fails when anything cluster:up starts is still running, or a node it added is left: run after cluster:down.
source "$(dirname "$0")/env.sh"
left=$(pgrep -a -f "(^|/)(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy) |containerd --config $STATE|docker-registry serve $STATE|containerd-shim-runc-v2 .*$CONTAINERD_SOCK" || true)
if [ -n "$left" ]; then
  echo "processes left after cluster:down:" >&2
  echo "$left" >&2
  exit 1
fi
# The extra nodes' host ends of their veth pairs and their namespaces' files (node.sh).
links=$(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^kvts-node/ {print $2}')
namespaces=$(awk -v d="$NODES_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)
if [ -n "$links$namespaces" ]; then
  echo "nodes left after cluster:down: $links $namespaces" >&2
  exit 1
fi
echo "cluster:down left no processes behind"
