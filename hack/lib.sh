# Shared by the hack/ scripts: paths and the pinned Node runtime.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVTS_CACHE=${KVTS_CACHE:-$HOME/.cache/kubevirt-ts}
export KVTS_CACHE

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Installs the npm packages (node@24 among them) when they are missing or stale.
ensure_node_modules() {
  local stamp="$REPO_ROOT/node_modules/.kvts-lock-hash"
  local want
  want=$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)
  if [ ! -x "$REPO_ROOT/node_modules/.bin/node" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing npm packages (npm ci)"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
  export PATH="$REPO_ROOT/node_modules/.bin:$PATH"
  local version
  version=$(node --version)
  case "$version" in v24.*) ;; *) echo "expected Node 24 from node_modules, got $version" >&2; exit 1 ;; esac
}

# ensure_debian_packages PKG...: installs the Debian packages that are missing.
ensure_debian_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# What the images copy from the host (busybox, QEMU, firmware, ISO tool, network tools, nbdkit with
# its curl plugin and xz for the DataVolume importer, the GNU tools of the compute container and
# vm-killer), which virt-launcher also runs on the host in standalone mode and its tests; and
# qemu-img's own curl driver, for the import benchmark's floor.
LAUNCHER_PACKAGES=(busybox-static qemu-system-x86 qemu-utils qemu-block-extra nbdkit xz-utils genisoimage skopeo ovmf seabios ipxe-qemu iproute2 iptables util-linux procps curl e2fsprogs)
