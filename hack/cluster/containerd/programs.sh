# Sourced by build-go.sh from this directory: containerd 2 and its runc shim, which the local cluster
# runs instead of Debian's containerd 1.6 when KVTS_CONTAINERD=2 (hack/cluster/env.sh). The
# btrfs, devmapper and zfs snapshotters need cgo and are not used here (overlayfs).
PROGRAMS=(
  containerd=github.com/containerd/containerd/v2/cmd/containerd
  containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  ctr=github.com/containerd/containerd/v2/cmd/ctr
)
LDFLAGS="-s -w"
TAGS="no_btrfs,no_devmapper,no_zfs"
