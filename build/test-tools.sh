#!/usr/bin/env bash
# Installs what the tests use beside pause-build itself (as root), idempotently:
# - Debian 12 packages: wine64 (runs the Windows binaries), containerd 1.6 (a runtime the
#   sandbox tests start privately), GNU time (peak memory of each copy in npm run bench);
# - today's cosign, oras, crane, containerd 2 and the CRI API proto from Debian unstable,
#   unpacked into $PAUSE_BUILD_TOOLS/root and never installed system-wide (that would
#   upgrade libc); they need only libc6 >= 2.34;
# - Node.js 22 and 24 from npm's `node` package into $PAUSE_BUILD_TOOLS/node<major>, beside
#   the system's node, for the tests that run under every current LTS.
# Tests find these through test/support/tools.ts, which reads the same PAUSE_BUILD_TOOLS.
set -euo pipefail

tools=${PAUSE_BUILD_TOOLS:-/var/cache/pause-build-tools}
packages=(wine64 containerd runc golang-go gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 strace time)
unstable=(cosign oras crane containerd golang-github-kubernetes-cri-api-dev)
node_versions=(22 24)

# shellcheck source=build/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian.sh"

require_root build/test-tools.sh
install_missing ' for the tests' "${packages[@]}"

if [[ ! -f $tools/root/.complete ]]; then
  log "unpacking ${unstable[*]} from Debian unstable into $tools/root"
  mkdir -p "$tools/lists/partial" "$tools/cache/archives/partial"
  rm -rf "$tools/debs" "$tools/root"
  mkdir -p "$tools/debs"
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [[ -z $uri ]]; then
    uri=$(awk '$1 == "deb" {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list)
  fi
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" >"$tools/sources.list"
  opts=(-o Dir::Etc::sourcelist="$tools/sources.list" -o Dir::Etc::sourceparts=-
        -o Dir::State::Lists="$tools/lists" -o Dir::Cache="$tools/cache")
  apt-get "${opts[@]}" update -qq
  (cd "$tools/debs" && apt-get "${opts[@]}" download "${unstable[@]}" >/dev/null)
  for d in "$tools"/debs/*.deb; do dpkg -x "$d" "$tools/root"; done
  touch "$tools/root/.complete"
fi

for v in "${node_versions[@]}"; do
  if [[ ! -x $tools/node$v/node_modules/.bin/node ]]; then
    log "installing Node.js $v into $tools/node$v"
    npm install --silent --no-audit --no-fund --prefix "$tools/node$v" "node@$v" >/dev/null
  fi
done
log "test tools ready in $tools"
