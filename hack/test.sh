#!/usr/bin/env bash
# The README's test command (npm test): installs what it needs, then runs every test tier.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_node_modules

log "typecheck (tsc --noEmit)"
tsc --noEmit -p .
log "generated manifests are current"
node hack/generate.ts --check
log "unit tests"
node --test --test-reporter=spec 'test/unit/**/*.test.ts'
