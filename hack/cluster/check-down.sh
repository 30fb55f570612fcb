#!/usr/bin/env bash
# Fails when anything cluster:up starts is still running: run after cluster:down.
source "$(dirname "$0")/env.sh"
left=$(pgrep -a -f "(^|/)(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy) |containerd --config $STATE|docker-registry serve $STATE|containerd-shim-runc-v2 .*$CONTAINERD_SOCK" || true)
if [ -n "$left" ]; then
  echo "processes left after cluster:down:" >&2
  echo "$left" >&2
  exit 1
fi
echo "cluster:down left no processes behind"
