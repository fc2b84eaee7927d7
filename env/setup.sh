#!/usr/bin/env bash
# Installs every Debian package the project needs (env/packages.txt). Idempotent: when all are
# present it does not touch apt. Run as root (or through sudo) on Debian 12.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mapfile -t wanted < <(grep -v '^\s*#' "$here/packages.txt" | sed 's/#.*//' | awk 'NF {print $1}')
missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "env/setup.sh: all ${#wanted[@]} packages present"
  exit 0
fi
echo "env/setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
