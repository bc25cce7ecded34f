#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a program outside the
# tree against it twice: with find_package(libim) (CMake) and with pkg-config; and runs the
# installed conformance library on examples/custom_store's SessionStore. Nothing outside the
# temporary directory is written.
# usage: install_test.sh BUILD_DIR CXX [COMPILER_LAUNCHER]
set -euo pipefail
build=$1
cxx=$2
launcher=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/im-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; exit 1; }

echo "== find_package(libim) consumer"
cmake -S "$here/consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release \
  -DIM_EXAMPLES_SOURCE="$here/../../examples" >"$tmp/configure.log" ||
  { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/cmake" -j2
"$tmp/cmake/consumer"
echo "== the installed conformance library on examples/custom_store"
"$tmp/cmake/custom_store_conformance"

echo "== pkg-config libim consumer"
pc_dir=$(dirname "$(find "$prefix" -name libim.pc)")
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs libim)
echo "pkg-config --cflags --libs libim: $flags"
# shellcheck disable=SC2086  # the flags are words
$launcher "$cxx" -std=c++17 -O1 "$here/consumer/consumer.cc" -o "$tmp/pc-consumer" $flags
"$tmp/pc-consumer"
