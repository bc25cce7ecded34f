#!/usr/bin/env bash
# Sets up, builds and starts imd on its embedded defaults (data in ./data, no other service).
# Extra arguments go to imd, e.g. scripts/serve.sh --http 127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target imd
exec build/server/imd --data ./data "$@"
