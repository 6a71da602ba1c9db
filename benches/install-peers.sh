#!/usr/bin/env bash
# Installs what benches/overhead.sh needs on Debian: gcc for the loops and the
# peer tools it compares vigil against. Idempotent; needs root to install.
set -euo pipefail
PKGS=(gcc libbpf-tools bpftrace util-linux)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "install-peers: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-peers: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
