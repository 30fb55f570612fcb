# Sourced by build-go.sh from this directory: the Prometheus server the local cluster runs
# (hack/cluster/prometheus.ts) and promtool, which checks our alert rules in CI.
# The module v0.3XX.Y is Prometheus 3.XX.Y.
prometheus_version=$(sed -n 's#^\s*github.com/prometheus/prometheus v0\.3\([0-9]*\)\.\([0-9]*\).*#3.\1.\2#p' go.mod | head -1)
PROGRAMS=(
  prometheus=github.com/prometheus/prometheus/cmd/prometheus
  promtool=github.com/prometheus/prometheus/cmd/promtool
)
# Only Kubernetes service discovery (plus file and HTTP, always in): the other clouds' SDKs
# would more than double the build. Without builtinassets the server has no web UI; its API is whole.
TAGS="remove_all_sd,enable_kubernetes_sd"
LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$prometheus_version"
