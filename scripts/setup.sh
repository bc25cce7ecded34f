#!/usr/bin/env bash
# Installs the Debian 12 packages libim needs to build and test. Idempotent: installs only what
# is missing. Runs apt-get as root (directly, or through sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libasio-dev libwebsocketpp-dev rapidjson-dev libfmt-dev doctest-dev
  libsodium-dev libtomlplusplus-dev libcli11-dev libutf8proc-dev
  libleveldb-dev libsnappy-dev prometheus-cpp-dev libspdlog-dev
  libbenchmark-dev
  libhiredis-dev redis-server  # the Redis backends and their tests
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and its sanitizers
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The web SDK's tests (sdk/web) need Node.js with npm, and Chromium for the browser test. A
# Node.js installed another way (with its own npm) counts.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if ! command -v chromium >/dev/null; then missing+=(chromium); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
