#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest over doctest).
# IM_SANITIZE=1 scripts/test.sh builds in build-asan with AddressSanitizer and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=build
ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${IM_SANITIZE:-0}" = "1" ]; then
  BUILD=build-asan
  ARGS=(-DCMAKE_BUILD_TYPE=Debug -DIM_SANITIZE=ON -DIM_BUILD_BENCHMARKS=OFF -DIM_BUILD_EXAMPLES=OFF)
  export UBSAN_OPTIONS=print_stacktrace=1  # a UBSan finding shows where, as ASan's do
fi
cmake -S . -B "$BUILD" "${ARGS[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j2 --timeout 300
