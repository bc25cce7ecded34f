// Test support: how many times a redis-server ran each command, from INFO commandstats, read on
// a client of the test's own. The INFO call that reads the figures is counted in the next
// reading, so a test compares two readings and subtracts the one INFO between them.
#ifndef IM_TESTS_SUPPORT_REDIS_COMMANDSTATS_H_
#define IM_TESTS_SUPPORT_REDIS_COMMANDSTATS_H_

#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "store/redis/redis_client.h"

namespace im::test {

// Command name ("info", "evalsha", "hgetall", ...) -> calls so far; empty when INFO fails.
inline std::map<std::string, uint64_t> RedisCommandCalls(internal::RedisClient& client) {
  std::map<std::string, uint64_t> calls;
  Result<internal::RedisReply> info = client.Command({"INFO", "commandstats"});
  if (!info.ok()) return calls;
  std::istringstream lines(info->str);
  std::string line;
  // cmdstat_<name>:calls=<n>,usec=...
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':');
    if (line.rfind("cmdstat_", 0) != 0 || colon == std::string::npos) continue;
    const size_t value = line.find("calls=", colon);
    if (value == std::string::npos) continue;
    calls[line.substr(8, colon - 8)] = std::stoull(line.substr(value + 6));
  }
  return calls;
}

// Calls between two readings, over every command, less the INFO of the first reading.
inline uint64_t RedisCallsBetween(const std::map<std::string, uint64_t>& before,
                                  const std::map<std::string, uint64_t>& after) {
  uint64_t total = 0;
  for (const auto& [name, n] : after) {
    auto it = before.find(name);
    total += n - (it == before.end() ? 0 : it->second);
  }
  return total - 1;
}

// Calls of `name` between two readings (the INFO of the first reading included for "info").
inline uint64_t RedisCallsOf(const std::map<std::string, uint64_t>& before,
                             const std::map<std::string, uint64_t>& after,
                             const std::string& name) {
  auto a = after.find(name);
  auto b = before.find(name);
  return (a == after.end() ? 0 : a->second) - (b == before.end() ? 0 : b->second);
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_REDIS_COMMANDSTATS_H_
