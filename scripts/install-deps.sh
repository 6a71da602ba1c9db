#!/usr/bin/env bash
# Installs what building and testing vigil needs on Debian/Ubuntu.
# Idempotent: does nothing when everything is already present.
set -euo pipefail

# The minimum Rust version (Cargo.toml's `rust-version`); stated here once.
MIN_RUST=1.91

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
  # NATS output and fleet tests: real JetStream servers and clusters (2.9.x: JetStream + KV)
  nats-server
  # packaging checks: systemd-analyze verify/security, the shipped logrotate config run for
  # real, dpkg-deb (dpkg is essential, listed for minimal images)
  systemd logrotate dpkg
  # live tests: `vigil run --dry-run` is checked to make no bpf(2) program load
  strace
  # packaging checks: `man -l` renders the generated pages, the changelog parses
  man-db dpkg-dev
  # report format checks: `vigil test --format junit` read back by a JUnit parser,
  # `vigil validate --format sarif` validated against the SARIF 2.1.0 schema
  # (both used through Debian's /usr/bin/python3)
  python3-junitparser python3-jsonschema
  # rustup download when no (or a too old) Rust toolchain is found
  curl ca-certificates
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

# A Rust toolchain of at least $MIN_RUST: the one on PATH (or in the usual
# rustup places), else installed (or updated) through rustup when reachable.
for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
  [[ -x $d/cargo ]] && PATH="$d:$PATH"
done
rust_ok() {
  local v
  v=$(cargo --version 2>/dev/null | awk '{print $2}') || return 1
  [[ -n $v ]] && [[ $(printf '%s\n%s\n' "$MIN_RUST" "${v%%-*}" | sort -V | head -n1) == "$MIN_RUST" ]]
}
if ! rust_ok; then
  have=$(cargo --version 2>/dev/null || echo "no cargo")
  echo "install-deps: Rust >= $MIN_RUST needed ($have); installing through rustup"
  if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install stable --profile minimal -c rustfmt,clippy && rustup default stable
  elif curl -sSf --max-time 30 https://sh.rustup.rs -o /tmp/rustup-init.sh; then
    sh /tmp/rustup-init.sh -y --profile minimal -c rustfmt,clippy && rm -f /tmp/rustup-init.sh
    PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! rust_ok; then
    echo "install-deps: could not install Rust >= $MIN_RUST (no network to rustup.rs?); install it with rustup (https://rustup.rs) and add ~/.cargo/bin to PATH" >&2
    exit 1
  fi
  echo "install-deps: $(cargo --version) ready; add ~/.cargo/bin to PATH in new shells"
fi
