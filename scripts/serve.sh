#!/usr/bin/env bash
# Sets up, builds imd and the im_chat example, and starts imd on its embedded defaults (data in
# ./data, no other service).
#   scripts/serve.sh                 serves in the foreground; Ctrl-C stops it
#   scripts/serve.sh --background    starts imd in the background and returns once it listens
#                                    (its output in data/imd.out)
#   scripts/serve.sh --stop          stops the imd running on ./data
# Other arguments go to imd, e.g. scripts/serve.sh --http 127.0.0.1:8000
# With npm at hand it also builds the web demo (examples/web-chat) and imd serves it at
# http://127.0.0.1:7000/ (unless --config or --static-dir is given).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=foreground
args=()
own_static=0
for arg in "$@"; do
  case "$arg" in
    --background) mode=background ;;
    --stop) mode=stop ;;
    --config|--config=*|--static-dir|--static-dir=*) own_static=1; args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done

# The pid of the imd running on ./data (imd writes data/imd.pid while it serves), or "".
running_pid() {
  local pid
  pid=$(awk '$1 == "pid" { print $2 }' data/imd.pid 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

if [ "$mode" = stop ]; then
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    echo "serve: no imd is running on ./data"
    exit 0
  fi
  kill "$pid"
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "serve: stopped imd (pid $pid)"
      exit 0
    fi
    sleep 0.1
  done
  echo "serve: imd (pid $pid) is still draining; it stops within its drain timeout" >&2
  exit 1
fi

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target imd im_chat

# The web demo: the SDK and the page, compiled by tsc (npm packages from the lockfile).
if [ "$own_static" = 0 ] && command -v npm >/dev/null; then
  if { [ -d sdk/web/node_modules ] || npm --prefix sdk/web ci --no-audit --no-fund >/dev/null; } &&
    npm --prefix sdk/web run build:demo >/dev/null; then
    args+=(--static-dir examples/web-chat/dist)
    echo "serve: the web demo is at http://127.0.0.1:7000/ (unless --http moves it)"
  else
    echo "serve: could not build the web demo (npm); serving without it" >&2
  fi
fi

if [ "$mode" = foreground ]; then
  exec build/server/imd --data ./data "${args[@]}"
fi

if pid=$(running_pid) && [ -n "$pid" ]; then
  echo "serve: imd already runs on ./data (pid $pid); scripts/serve.sh --stop stops it" >&2
  exit 1
fi
mkdir -p data
nohup build/server/imd --data ./data "${args[@]}" >data/imd.out 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 600); do
  if grep -q " serving " data/imd.out; then
    grep "^imd:" data/imd.out
    echo "serve: imd runs in the background (pid $pid, output in data/imd.out);" \
      "scripts/serve.sh --stop stops it"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    cat data/imd.out >&2
    echo "serve: imd exited before it listened" >&2
    exit 1
  fi
  sleep 0.1
done
echo "serve: imd did not listen within 60 s (output in data/imd.out)" >&2
kill "$pid"
exit 1
