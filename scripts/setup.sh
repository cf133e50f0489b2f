#!/usr/bin/env bash
# Installs the Debian packages fdn needs to build and test, if any is missing.
# Safe to run repeatedly: it does nothing when everything is present.
set -euo pipefail

packages=(build-essential cmake pkg-config luajit libluajit-5.1-dev
  libuv1-dev lua-busted lua-cjson lua-check clang-format cppcheck
  libhttp-parser-dev curl)
packages+=("$@")

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || {
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
