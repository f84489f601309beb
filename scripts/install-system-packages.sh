#!/usr/bin/env bash
# Installs the Debian packages named as arguments: dataset-fashion-mnist (Fashion-MNIST offline),
# openssh-server openssh-client (the remote-lab test's real sshd), chromium chromium-driver (the
# browser test). Needs root and apt-get; elsewhere it says what it skipped and succeeds (the data
# then downloads, the sshd and browser tests are skipped).
set -euo pipefail
packages=("$@")
[ ${#packages[@]} -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: not root or no apt-get; skipping Debian packages: ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
echo "installed: ${missing[*]}"
