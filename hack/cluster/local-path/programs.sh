# Sourced by build-go.sh from this directory: Rancher's local-path-provisioner, the local cluster's default StorageClass.
local_path_version=$(sed -n 's#^\s*github.com/rancher/local-path-provisioner \(v[0-9.]*\).*#\1#p' go.mod | head -1)
PROGRAMS=(local-path-provisioner=github.com/rancher/local-path-provisioner)
LDFLAGS="-s -w -X main.VERSION=$local_path_version"
