// The Redis backends of the project's conformance runner (main.cc), against one redis-server
// that the test process starts on a free port at the first Redis case (support/redis_server.h)
// and stops at exit. Every `open` empties it (FLUSHALL); `reopen` opens the same data again.
#ifndef IM_TESTS_CONFORMANCE_REDIS_BACKENDS_H_
#define IM_TESTS_CONFORMANCE_REDIS_BACKENDS_H_

#include "support/redis_server.h"

namespace im::test {

// The test process's redis-server, started at the first call (throws when it cannot start,
// which fails the case: a missing redis-server is an error, not a skip).
RedisServer& SharedRedisServer();

// Adds every Redis backend (im::conformance::AddBackend).
void AddRedisBackends();

}  // namespace im::test

#endif  // IM_TESTS_CONFORMANCE_REDIS_BACKENDS_H_
