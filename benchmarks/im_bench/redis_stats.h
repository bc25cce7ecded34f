// im-bench: counters of a redis-server (INFO stats and commandstats), read at the start and the
// end of the measured interval, so that a run against imd nodes on Redis reports the Redis
// commands and round trips per message. A blocking connection of its own, loopback only.
#ifndef IM_BENCH_REDIS_STATS_H_
#define IM_BENCH_REDIS_STATS_H_

#include <cstdint>
#include <map>
#include <string>

namespace imbench {

struct RunResult;

struct RedisCounters {
  bool ok = false;
  std::string error;                 // why not ok
  uint64_t commands = 0;             // total_commands_processed
  uint64_t reads = 0;                // total_reads_processed: reads of client sockets
  std::map<std::string, uint64_t> calls;  // per command (cmdstat_<name>:calls=N)
};

// INFO stats and commandstats of the redis-server at host:port.
RedisCounters ReadRedisCounters(const std::string& host, int port);

// Adds to r->extra the differences between `after` and `before` over `messages` messages (the
// sends acked in the measured interval): redis_commands_per_msg, redis_round_trips_per_msg
// (socket reads, about one per round trip: a pipeline arrives in one read), and
// redis_<command>_per_msg for each command called. The two INFO calls themselves are left out.
void AddRedisFigures(const RedisCounters& before, const RedisCounters& after, uint64_t messages,
                     RunResult* r);

}  // namespace imbench

#endif  // IM_BENCH_REDIS_STATS_H_
