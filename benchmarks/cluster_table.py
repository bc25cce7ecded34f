#!/usr/bin/env python3
"""Prints the table of `benchmarks/compare --cluster` from its JSON-lines file (im-bench --json).

Rows: 1:1 chat and the group fan-out for (a) one imd node on LevelDB, (b) one node on Redis,
(c) three nodes on one Redis; columns: deliveries/s, delivery p50 and p99, the ratios (b)/(a)
and (c)/(b), and Redis commands and round trips per message (im-bench --redis-port: deltas of
INFO stats over the measured interval, divided by the messages acked in it).

    benchmarks/cluster_table.py build-bench/compare-<time>.jsonl
"""
import json
import sys

NAMES = {"leveldb": "(a) 1 node, LevelDB", "redis": "(b) 1 node, Redis",
         "cluster": "(c) 3 nodes, Redis"}
TOTALS = ("redis_commands_per_msg", "redis_round_trips_per_msg")


def main(path):
    rows = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            label = r.get("label", "")
            if label.startswith("cluster:"):
                rows[(label[len("cluster:"):], r["scenario"])] = r

    def ratio(r, other, scenario):
        o = rows.get((other, scenario))
        return f"{r['rate'] / o['rate']:.2f}x" if o and o["rate"] > 0 else "-"

    def fixed(v):
        return "-" if v is None else f"{v:.2f}"

    print(f"{'setup':<21} {'scenario':<8} {'deliveries/s':>12} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'(b)/(a)':>8} {'(c)/(b)':>8} {'cmds/msg':>9} {'trips/msg':>9}  commands per message")
    for scenario in ("chat", "group"):
        for setup in ("leveldb", "redis", "cluster"):
            r = rows.get((setup, scenario))
            if r is None:
                print(f"{NAMES[setup]:<21} {scenario:<8} {'no result':>12}")
                continue
            d = r.get("delivery_us", {})
            per = ", ".join(f"{k[len('redis_'):-len('_per_msg')]} {v:.2f}"
                            for k, v in sorted(r.items())
                            if k.startswith("redis_") and k.endswith("_per_msg")
                            and k not in TOTALS)
            print(f"{NAMES[setup]:<21} {scenario:<8} {r['rate']:>12.0f} "
                  f"{d.get('p50', 0) / 1000:>8.2f} {d.get('p99', 0) / 1000:>8.2f} "
                  f"{ratio(r, 'leveldb', scenario) if setup == 'redis' else '':>8} "
                  f"{ratio(r, 'redis', scenario) if setup == 'cluster' else '':>8} "
                  f"{fixed(r.get(TOTALS[0])):>9} {fixed(r.get(TOTALS[1])):>9}  {per}")
            if r.get("note"):
                print(f"{'':<21} note: {r['note']}")
    print("deliveries/s: group counts every member's push. Commands and round trips (socket")
    print("reads by Redis) per message: per send acked in the measured interval.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: cluster_table.py FILE.jsonl")
    main(sys.argv[1])
