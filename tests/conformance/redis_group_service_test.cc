// Redis-only GroupService cases, beside the conformance suite every backend runs: what a caller
// sees while Redis is down, and that groups survive a Redis restart.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "conformance/redis_test_options.h"
#include "conformance/suites/suite.h"
#include "im/redis.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im {
namespace {

using namespace conformance::internal;  // NOLINT: the suite's checks (Must, CheckError)

constexpr TimestampMs kT0 = 1'700'000'000'000;

TEST_CASE("GroupService: redis answers 503 while Redis is down and recovers by itself") {
  test::RedisServer server;
  std::shared_ptr<GroupService> s =
      Must(OpenRedisGroupService(test::FastFailingRedisOptions(server)));
  const GroupKey g{"default", "g1"};
  MustOk(s->Create(g, "G", "alice", {"bob"}, kT0).status());

  server.Stop();
  CheckError(s->Create(GroupKey{"default", "g2"}, "G", "alice", {}, kT0), Code::kUnavailable,
             "unavailable");
  CheckError(s->Get(g), Code::kUnavailable, "unavailable");
  CheckError(s->Join(g, "carol", kT0), Code::kUnavailable, "unavailable");
  CheckError(s->Quit(g, "bob"), Code::kUnavailable, "unavailable");
  CheckError(s->Members(g, "", 10), Code::kUnavailable, "unavailable");
  CheckError(s->IsMember(g, "bob"), Code::kUnavailable, "unavailable");
  CheckError(s->AllMembers(g), Code::kUnavailable, "unavailable");

  server.Start();  // SIGTERM wrote the AOF
  REQUIRE(test::WaitUntil([&] { return s->Get(g).ok(); }));
  CHECK(Must(s->AllMembers(g)) == std::vector<std::string>{"alice", "bob"});
  MustOk(s->Join(g, "carol", kT0 + 1));
  CHECK(Must(s->Get(g)).member_count == 3);
}

}  // namespace
}  // namespace im
