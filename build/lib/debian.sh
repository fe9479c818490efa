# shellcheck shell=bash
# Shared by build/setup.sh and build/test-tools.sh (sourced, not run).

log() { printf '==> %s\n' "$*"; }

# require_root SCRIPT: both scripts install Debian packages.
require_root() {
  if [[ $EUID -ne 0 ]]; then
    echo "$1: must run as root (it installs Debian packages); run: sudo bash $1" >&2
    exit 1
  fi
}

# install_missing WHAT PACKAGE...: installs those not installed yet; apt is asked nothing when all are.
install_missing() {
  local what=$1 p
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${#missing[@]} Debian packages$what"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
