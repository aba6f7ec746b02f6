#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages serpent builds against, if any is missing.
# Sourced by scripts/test.sh and scripts/quickstart.sh; safe to run on its own.
set -euo pipefail

SERPENT_PACKAGES=(build-essential cmake ninja-build libeigen3-dev libyaml-cpp-dev libhdf5-dev nlohmann-json3-dev
                  libgtest-dev zlib1g-dev libzstd-dev libopenmpi-dev openmpi-bin python3)

serpent_install_deps() {
  local missing=()
  for p in "${SERPENT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "serpent: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "serpent: need root or sudo to install ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  serpent_install_deps
fi
