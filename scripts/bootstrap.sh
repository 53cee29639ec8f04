#!/usr/bin/env bash
# Install the Debian packages Ladder's sandbox and tests use. As root it installs what is missing;
# otherwise it names what is missing and stops, so nothing half-works later.
set -euo pipefail

# LADDER_BOOTSTRAP_PACKAGES overrides the list (the tests use it to exercise the messages).
read -r -a packages <<< "${LADDER_BOOTSTRAP_PACKAGES:-postgresql openssh-server ruby ruby-rbtrace puma ruby-rack ruby-flipper ruby-pg nginx-light}"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ladder: this is not a Debian/Ubuntu machine; install these (or their equivalents) yourself: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ladder: missing Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these as system services on install; Ladder runs its own on free ports.
for svc in postgresql nginx ssh; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
