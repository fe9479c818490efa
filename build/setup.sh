#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root) for pause-build and its tests:
# Debian packages, a working podman, and a local Debian base image for the builder
# (nothing is pulled from a registry, so the base is made with debootstrap).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

packages=(
  podman runc uidmap docker.io docker-registry skopeo qemu-user-static debootstrap
  apache2-utils openssl iproute2 util-linux ca-certificates git make shellcheck
  gcc libc6-dev binutils
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
  gcc-s390x-linux-gnu libc6-dev-s390x-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
  gcc-mingw-w64-x86-64 golang-go wine64
)
base_image=localhost/debian:bookworm-slim
cache=${PAUSE_BUILD_CACHE:-/var/cache/pause-build}

# shellcheck source=build/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian.sh"

require_root build/setup.sh
install_missing '' "${packages[@]}"

# crun refuses the hybrid cgroup layout of these machines, and podman's default
# ulimits exceed their hard limit.
conf=/etc/containers/containers.conf
if ! grep -q 'pause-build' "$conf" 2>/dev/null; then
  log "configuring podman ($conf)"
  mkdir -p /etc/containers
  cat >>"$conf" <<'CONF'
# pause-build: runc, and ulimits within this machine's hard limit
[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=1000:1000"]
CONF
fi

if ! command -v node >/dev/null || (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
  echo "build/setup.sh: Node.js 20 or newer is needed; install it (e.g. from nodejs.org or NodeSource) and run again" >&2
  exit 1
fi

if ! podman image exists "$base_image"; then
  mkdir -p "$cache"
  if [[ ! -f $cache/bookworm-minbase.tar ]]; then
    log "debootstrap bookworm (about 30 s)"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" >/dev/null
    tar -C "$root" -cf "$cache/bookworm-minbase.tar.partial" .
    mv "$cache/bookworm-minbase.tar.partial" "$cache/bookworm-minbase.tar"
    rm -rf "$root"; trap - EXIT
  fi
  log "importing $base_image into podman"
  podman import -q "$cache/bookworm-minbase.tar" "$base_image" >/dev/null
fi
log "setup done"
