// Redis-only cases, beside the conformance suites every backend runs: what a caller of a Redis
// backend sees while Redis is down, and that it recovers by itself.

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "conformance/suites/suite.h"
#include "im/redis.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im {
namespace {

using conformance::internal::CheckError;
using conformance::internal::FastHash;
using conformance::internal::Must;

constexpr TimestampMs kT0 = 1'700'000'000'000;

RedisOptions FastFailing(const test::RedisServer& server) {
  RedisOptions options;
  options.url = server.url();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  options.reconnect_min_ms = 10;
  options.reconnect_max_ms = 50;
  return options;
}

TEST_CASE("UserStore: redis answers 503 while Redis is down and recovers by itself") {
  test::RedisServer server;
  server.Stop();
  // Opening does not need Redis: a node may start before it.
  std::shared_ptr<UserStore> s = Must(OpenRedisUserStore(FastFailing(server), FastHash()));
  const UserKey alice{"default", "alice"};
  CheckError(s->Create(alice, "password-1", "", kT0), Code::kUnavailable, "unavailable");
  CheckError(s->Get(alice), Code::kUnavailable, "unavailable");
  // Not 401: a login must not tell a user their password is wrong when the store is down.
  CheckError(s->VerifyPassword(alice, "password-1"), Code::kUnavailable, "unavailable");

  server.Start();
  REQUIRE(test::WaitUntil([&] { return s->Get(alice).status().code() == Code::kNotFound; }));
  Must(s->Create(alice, "password-1", "Alice", kT0));

  // Stopped again (SIGTERM writes the AOF): the account survives the restart.
  server.Restart();
  REQUIRE(test::WaitUntil([&] { return s->VerifyPassword(alice, "password-1").ok(); }));
  CHECK(Must(s->Get(alice)).display_name == "Alice");
}

}  // namespace
}  // namespace im
