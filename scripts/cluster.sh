#!/usr/bin/env bash
# A local cluster on one machine: a redis-server (its own temporary directory and a free port,
# appendonly yes, appendfsync always) and three imd nodes on free ports, every store on that
# Redis, one signing key for all.
#   scripts/cluster.sh          builds imd, starts the cluster in the background, prints the
#                               nodes' addresses and how to get a token
#   scripts/cluster.sh --stop   stops the nodes (they drain) and Redis, removes the directory
# The running cluster's directory is recorded in ./.cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=3
state=.cluster

stop_pid() {  # pid, what
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "cluster: $2 (pid $pid) did not stop in 30 s; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

if [ "${1:-}" = --stop ]; then
  if [ ! -f "$state" ]; then
    echo "cluster: no cluster is running (no $state)"
    exit 0
  fi
  dir=$(cat "$state")
  for n in $(seq 0 $((NODES - 1))); do
    pid=$(awk '$1 == "pid" { print $2 }' "$dir/node$n/imd.pid" 2>/dev/null || true)
    [ -n "$pid" ] && stop_pid "$pid" "imd node-$n"
  done
  [ -f "$dir/redis.pid" ] && stop_pid "$(cat "$dir/redis.pid")" "redis-server"
  rm -rf "$dir" "$state"
  echo "cluster: stopped"
  exit 0
fi
if [ -n "${1:-}" ]; then
  echo "usage: scripts/cluster.sh [--stop]" >&2
  exit 2
fi
if [ -f "$state" ]; then
  echo "cluster: one is running already ($(cat "$state")); scripts/cluster.sh --stop stops it" >&2
  exit 1
fi
command -v redis-server >/dev/null || {
  echo "cluster: redis-server is missing (scripts/setup.sh installs it)" >&2
  exit 1
}

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target imd >/dev/null

dir=$(mktemp -d /tmp/im-cluster-XXXXXX)
echo "$dir" >"$state"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Redis: a free port may be taken between the probe and the bind: try a few.
for _ in 1 2 3 4 5; do
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
    --appendfsync always --save "" --daemonize yes --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  port=""
done
if [ -z "$port" ]; then
  echo "cluster: redis-server did not start (see $dir/redis.log)" >&2
  exit 1
fi
url="redis://127.0.0.1:$port/0"
echo "cluster: redis-server on 127.0.0.1:$port (appendonly yes, appendfsync always), data in $dir"

key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
for n in $(seq 0 $((NODES - 1))); do
  data="$dir/node$n"
  mkdir -p "$data"
  cat >"$data/imd.toml" <<TOML
[server]
node_number = $n

[storage]
inbox = "$url"
groups = "$url"
users = "$url"
sessions = "$url"

[cluster]
node_id = "node-$n"

[keys]
default = "$key"
TOML
  nohup build/server/imd --config "$data/imd.toml" --data "$data" --tcp 127.0.0.1:0 \
    --http 127.0.0.1:0 >"$data/imd.out" 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    grep -q " serving " "$data/imd.out" && break
    if ! kill -0 $! 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! grep -q " serving " "$data/imd.out"; then
    cat "$data/imd.out" >&2
    echo "cluster: node-$n did not start; scripts/cluster.sh --stop cleans up" >&2
    exit 1
  fi
  grep " serving " "$data/imd.out" | sed "s/^imd: node /cluster: /"
done
echo "cluster: a token (any node accepts it): build/server/imd token --user alice --config $dir/node0/imd.toml"
echo "cluster: stop it with scripts/cluster.sh --stop"
