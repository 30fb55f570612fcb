# Sourced by build-go.sh from this directory: metrics-server, the resource metrics API (kubectl top, HorizontalPodAutoscalers on CPU).
metrics_server_version=$(sed -n 's#^\s*sigs.k8s.io/metrics-server \(v[0-9.]*\).*#\1#p' go.mod | head -1)
PROGRAMS=(metrics-server=sigs.k8s.io/metrics-server/cmd/metrics-server)
LDFLAGS="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$metrics_server_version"
