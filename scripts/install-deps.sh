#!/usr/bin/env bash
# Installs what building and testing vigil needs on Debian/Ubuntu.
# Idempotent: does nothing when everything is already present.
set -euo pipefail

PKGS=(
  # build: libbpf-sys compiles libbpf and clang compiles the .bpf.c programs
  clang llvm gcc make pkg-config libelf-dev zlib1g-dev
  # bpf/build.rs generates the Rust record layouts from vigil.h with bindgen (libclang)
  libclang-dev
  # vmlinux.h regeneration and inspection
  bpftool
  # live tests: network namespaces, packet loss, listeners
  iproute2 nftables netcat-openbsd
  # sink tests: a real syslog daemon
  rsyslog
  # packaging checks: systemd-analyze verify/security, the shipped logrotate config run for
  # real, dpkg-deb (dpkg is essential, listed for minimal images)
  systemd logrotate dpkg
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]} (run with sudo)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  for c in "$HOME/.cargo/bin/cargo" /root/.cargo/bin/cargo /usr/local/cargo/bin/cargo; do
    [[ -x $c ]] && exit 0
  done
  echo "install-deps: no Rust toolchain found; install Rust >= 1.82 with rustup (https://rustup.rs)" >&2
  exit 1
fi
