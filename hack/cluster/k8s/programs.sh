# Sourced by build-go.sh from this directory: the Kubernetes binaries and etcd, with the version stamped in.
k8s_version=$(sed -n 's#^\s*k8s.io/kubernetes \(v[0-9.]*\).*#\1#p' go.mod | head -1)
minor=$(echo "$k8s_version" | cut -d. -f2)
PROGRAMS=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do PROGRAMS+=("$b=k8s.io/kubernetes/cmd/$b"); done
PROGRAMS+=(etcd=./cmd/etcd)
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
