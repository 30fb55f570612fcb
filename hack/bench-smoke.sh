#!/usr/bin/env bash
# Every benchmark once at its smallest sizes (npm run bench:smoke; npm test runs it on its cluster),
# so one that no longer runs fails the tests. Its figures are not checked: benchmarks are not tests.
# Needs the local cluster with kubevirt-ts installed (KUBECONFIG) and kubectl on PATH.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_node_modules
run() {
  log "benchmark smoke run: $*"
  "$@" >/dev/null
}
run node bench/cli.ts --runs 1
run node bench/launcher.ts --runs 1
run node bench/import.ts --runs 1 --virtual-gib 1 --data-mib 10
run node bench/vmi-startup.ts --runs 1 --burst 2
run node bench/memory.ts --vmis 2 --running 1 --settle 0
run node bench/metrics-scrape.ts --vmis 1 --scrapes 2
run node bench/fleet-delete.ts --vmis 2
run node bench/migration.ts --runs 1 --memory 128Mi --busy false
run node bench/scale.ts --vmis 20 --nodes 2
log "every benchmark ran"
