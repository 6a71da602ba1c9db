#!/usr/bin/env bash
# Builds the vigil .deb with plain dpkg-deb (no cargo-deb), or installs the same
# tree into a directory (--root) instead.
#
#   scripts/build-deb.sh [--binary PATH] [--out DIR] [--version V] [--arch A]
#                        [--compress xz|gzip|zstd|none] [--no-strip]
#   scripts/build-deb.sh --root DIR [--binary PATH] [--no-strip]
#
# Contents:
#   /usr/bin/vigil                         the binary (default target/release/vigil)
#   /usr/share/vigil/rules/*.yaml          the shipped rules (rules/*.yaml)
#   /usr/share/vigil/rules/tests/*.yaml    their test cases (for `vigil test`)
#   /etc/vigil/vigil.yaml                  default config            (conffile)
#   /etc/vigil/rules.d/README, 50-local.yaml.example                  (conffiles)
#   /etc/logrotate.d/vigil                 rotation of /var/log/vigil (conffile)
#   /lib/systemd/system/vigil.service      the unit
#   /usr/share/doc/vigil/                  README, rules README, config reference, SECURITY.md
# The maintainer scripts talk to systemd only when it is running
# (/run/systemd/system exists), so the package installs in chroots and containers.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
binary="$repo/target/release/vigil"
out="$repo/target/debian"
root=""
version=""
arch=""
compress=xz
strip_debug=1

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "build-deb: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --binary) binary=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --root) root=${2:?}; shift 2 ;;
    --version) version=${2:?}; shift 2 ;;
    --arch) arch=${2:?}; shift 2 ;;
    --compress) compress=${2:?}; shift 2 ;;
    --no-strip) strip_debug=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "build-deb: unknown argument $1" >&2; usage 1 ;;
  esac
done

[[ -x $binary ]] || die "no executable at $binary (run: cargo build --release, or pass --binary PATH)"
if [[ -z $version ]]; then
  version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
  [[ -n $version ]] || die "cannot read the version from Cargo.toml (pass --version)"
fi
if [[ -z $arch ]]; then
  arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg not found (pass --arch)"
fi
shopt -s nullglob
rule_files=("$repo"/rules/*.yaml)
((${#rule_files[@]})) || die "no rules/*.yaml in $repo"

stage=$(mktemp -d "${TMPDIR:-/tmp}/vigil-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/pkg"

# --- the file tree ------------------------------------------------------------
install -D -m 0755 "$binary" "$pkg/usr/bin/vigil"
# Debug info out (symbols stay for backtraces), as Debian does; --no-strip keeps it.
if ((strip_debug)) && command -v strip >/dev/null; then
  strip --strip-debug "$pkg/usr/bin/vigil"
fi
install -d -m 0755 "$pkg/usr/share/vigil/rules"
install -m 0644 "${rule_files[@]}" "$pkg/usr/share/vigil/rules/"
# The shipped rules' test cases, so `vigil test /usr/share/vigil/rules /etc/vigil/rules.d`
# checks local tuning against them.
rule_tests=("$repo"/rules/tests/*.yaml)
if ((${#rule_tests[@]})); then
  install -d -m 0755 "$pkg/usr/share/vigil/rules/tests"
  install -m 0644 "${rule_tests[@]}" "$pkg/usr/share/vigil/rules/tests/"
fi
install -D -m 0640 "$repo/packaging/vigil.yaml" "$pkg/etc/vigil/vigil.yaml"
install -d -m 0755 "$pkg/etc/vigil/rules.d"
install -m 0644 "$repo/packaging/rules.d/README" "$repo/packaging/rules.d/50-local.yaml.example" \
  "$pkg/etc/vigil/rules.d/"
install -D -m 0644 "$repo/packaging/logrotate" "$pkg/etc/logrotate.d/vigil"
install -D -m 0644 "$repo/packaging/vigil.service" "$pkg/lib/systemd/system/vigil.service"
doc="$pkg/usr/share/doc/vigil"
install -d -m 0755 "$doc"
install -m 0644 "$repo/README.md" "$doc/README.md"
[[ -f $repo/rules/README.md ]] && install -m 0644 "$repo/rules/README.md" "$doc/rules-README.md"
[[ -f $repo/sinks/CONFIG.md ]] && install -m 0644 "$repo/sinks/CONFIG.md" "$doc/CONFIG.md"
[[ -f $repo/packaging/SECURITY.md ]] && install -m 0644 "$repo/packaging/SECURITY.md" "$doc/SECURITY.md"
cat >"$doc/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vigil

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
EOF
chmod 0644 "$doc/copyright"

if [[ -n $root ]]; then
  mkdir -p "$root"
  cp -a "$pkg/." "$root/"
  install -d -m 0750 "$root/var/log/vigil"
  echo "build-deb: installed vigil $version into $root"
  exit 0
fi

# --- control files --------------------------------------------------------------
# Depends: the packages owning the shared libraries the binary links (what
# dpkg-shlibdeps would find, without needing a debian/ source tree).
depends=()
while read -r lib; do
  owner=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1) || true
  if [[ -z $owner ]]; then
    real=$(readlink -f "$lib")
    owner=$(dpkg -S "$real" 2>/dev/null | head -n1 | cut -d: -f1) || true
  fi
  [[ -n $owner ]] && depends+=("$owner")
done < <(ldd "$binary" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p')
[[ " ${depends[*]} " == *" libc6 "* ]] || depends+=(libc6)
depends_line=$(printf '%s\n' "${depends[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')
installed_size=$(du -sk --apparent-size "$pkg" | cut -f1)

install -d -m 0755 "$pkg/DEBIAN"
cat >"$pkg/DEBIAN/control" <<EOF
Package: vigil
Version: $version
Architecture: $arch
Maintainer: vigil developers <vigil@example.invalid>
Installed-Size: $installed_size
Depends: $depends_line
Recommends: logrotate
Section: admin
Priority: optional
Homepage: https://example.invalid/vigil
Description: policy-driven Linux runtime detection engine (eBPF)
 vigil watches process executions, file opens, network connects and accepts
 and TCP retransmissions with eBPF, filters in the kernel what no rule can
 match, evaluates YAML/Rhai rules on the rest and raises alerts to stdout (the
 journal), files, syslog, webhooks and email. Rules hot-reload; the same
 engine validates and unit-tests rule files offline (vigil validate, vigil test).
EOF

cat >"$pkg/DEBIAN/conffiles" <<'EOF'
/etc/vigil/vigil.yaml
/etc/vigil/rules.d/README
/etc/vigil/rules.d/50-local.yaml.example
/etc/logrotate.d/vigil
EOF

# Maintainer scripts honour $DPKG_ROOT (set by `dpkg --root`) and touch systemd
# only when it runs.
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    mkdir -p "$DPKG_ROOT/var/log/vigil"
    chmod 0750 "$DPKG_ROOT/var/log/vigil"
    if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        if [ -n "$2" ]; then
            # Upgrade: restart a running daemon on the new binary and rules.
            systemctl try-restart vigil.service >/dev/null 2>&1 || true
        else
            echo "vigil installed; start it with: systemctl enable --now vigil"
        fi
    fi
fi
exit 0
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl stop vigil.service >/dev/null 2>&1 || true
    systemctl disable vigil.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
    rm -rf "$DPKG_ROOT/var/log/vigil"
fi
if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles"

mkdir -p "$out"
deb="$out/vigil_${version}_${arch}.deb"
dpkg-deb --root-owner-group "-Z$compress" --build "$pkg" "$deb" >/dev/null
echo "$deb"
