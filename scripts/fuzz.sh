#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz/ and runs each for N seconds
# (default 60) on a copy of its seed corpus in build-fuzz/fuzz-run/<target>/ (new inputs never
# land in tests/fuzz/corpus). Exits non-zero when a target crashes, leaks, times out or runs out
# of memory, naming the target and the file that reproduces it
# (build-fuzz/tests/fuzz/fuzz_<target> <file>).
#
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
scripts/setup.sh
BUILD=build-fuzz
ARGS=(-DIM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if command -v ccache >/dev/null; then ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD" "${ARGS[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

# UBSan findings with their stack, like ASan's.
export UBSAN_OPTIONS=print_stacktrace=1
RUN="$BUILD/fuzz-run"
rm -rf "$RUN"
failed=()
for binary in "$BUILD"/tests/fuzz/fuzz_*; do
  [ -x "$binary" ] || continue
  target=${binary##*/fuzz_}
  dir="$RUN/$target"
  mkdir -p "$dir/corpus"
  cp -R "tests/fuzz/corpus/$target/." "$dir/corpus/"
  options=(-timeout=10 -rss_limit_mb=2048 -max_total_time="$SECONDS_EACH" -print_final_stats=1
           -artifact_prefix="$dir/")
  case "$target" in
    codec|jwt) options+=(-dict=tests/fuzz/json.dict) ;;
    config) options+=(-dict=tests/fuzz/toml.dict) ;;
  esac
  echo "fuzz: $target for ${SECONDS_EACH}s"
  if "$binary" "${options[@]}" "$dir/corpus" >"$dir/log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | sed "s/^/fuzz: $target: /" || true
  else
    failed+=("$target")
    echo "fuzz: $target FAILED; the last lines of $dir/log:" >&2
    tail -n 60 "$dir/log" >&2
    for artifact in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      if [ -e "$artifact" ]; then echo "fuzz: $target: reproduce with $binary $artifact" >&2; fi
    done
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all targets ran ${SECONDS_EACH}s without a finding"
