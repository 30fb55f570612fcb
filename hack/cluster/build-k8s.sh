#!/usr/bin/env bash
# The pinned upstream Kubernetes and etcd binaries (see build-go.sh); prints their directory.
exec "$(dirname "$0")/build-go.sh" k8s "$@"
