#!/usr/bin/env bash
# The README's test command (npm test): installs what it needs, then runs every test tier:
# format and lint (Biome), typecheck, generated manifests, Prometheus rules (promtool), unit tests,
# integration tests (QEMU on this host), then the cluster tests on a fresh local cluster.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_node_modules

log "format and lint (Biome)"
biome ci --error-on-warnings
log "typecheck (tsc --noEmit)"
tsc --noEmit -p .
tsc --noEmit -p src/console/web
log "generated manifests are current"
node hack/generate.ts --check
log "KubeVirt's Prometheus rules load and compute what they should (promtool, built from the Prometheus module)"
promtool="$(bash hack/cluster/build-go.sh prometheus)/promtool"
"$promtool" check rules manifests/kubevirt-prometheus-rules.yaml
"$promtool" test rules test/rules/kubevirt-rules.test.yaml
log "unit tests"
node --test --test-reporter=spec 'test/unit/**/*.test.ts'

log "integration tests: virt-launcher with real QEMU on this host"
ensure_debian_packages "${LAUNCHER_PACKAGES[@]}"
bash images/guest/build.sh >/dev/null
node --test --test-reporter=spec --test-concurrency=1 --test-timeout=300000 'test/integration/**/*.test.ts'

log "cluster tests: bringing up the local cluster"
bash hack/cluster/down.sh >/dev/null 2>&1 || true
kubeconfig_line=$(bash hack/cluster/up.sh | tail -n 1)
export "${kubeconfig_line?}"
cleanup() { bash hack/cluster/down.sh >/dev/null 2>&1 || true; }
trap cleanup EXIT
PATH="$(hack/cluster/build-k8s.sh):$PATH"
log "building and pushing images"
node images/build.ts
log "installing kubevirt-ts (virt-operator, KubeVirt CR)"
node hack/install.ts
log "benchmarks, once each at their smallest sizes (they must run; their figures are not checked)"
bash hack/bench-smoke.sh
# virtctl ssh and scp run the system's OpenSSH client; the web console's test drives Debian's Chromium.
ensure_debian_packages openssh-client chromium
node --test --test-reporter=spec --test-concurrency=1 'test/e2e/**/*.test.ts'
# The tests that need a second node (they skip on one): node02 joins the same cluster.
log "cluster tests on two nodes: node02 joins; pod networking, live migration across nodes, drain, self-fencing"
bash hack/cluster/node.sh add node02
kubectl rollout status ds/virt-handler -n kubevirt --timeout=300s
node --test --test-reporter=spec --test-concurrency=1 test/e2e/two-nodes.test.ts test/e2e/two-node-migration.test.ts

log "cluster tests: taking the cluster down"
trap - EXIT
bash hack/cluster/down.sh
bash hack/cluster/check-down.sh
