#!/usr/bin/env bash
# Installs plumb's build and test dependencies (Debian/Ubuntu packages).
# Does nothing, and needs no network, when they are all installed already.
set -euo pipefail
PKGS=(gcc make cmake pkg-config python3
      libsqlite3-dev libcjson-dev libcurl4-openssl-dev libfaiss-dev libopenblas-dev
      libstemmer-dev libutf8proc-dev libgomp1 poppler-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "plumb: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
