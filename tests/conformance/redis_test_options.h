// RedisOptions for the Redis-only cases that stop and start their redis-server: timeouts
// generous for a loaded box, reconnect backoff short so that recovery is quick.
#ifndef IM_TESTS_CONFORMANCE_REDIS_TEST_OPTIONS_H_
#define IM_TESTS_CONFORMANCE_REDIS_TEST_OPTIONS_H_

#include "im/redis.h"
#include "support/redis_server.h"

namespace im::test {

inline RedisOptions FastFailingRedisOptions(const RedisServer& server) {
  RedisOptions options;
  options.url = server.url();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  options.reconnect_min_ms = 10;
  options.reconnect_max_ms = 50;
  return options;
}

}  // namespace im::test

#endif  // IM_TESTS_CONFORMANCE_REDIS_TEST_OPTIONS_H_
