// Redis-only OfflineQueue cases: the inbox scripts compare the redis-server's run_id with
// im:instance once per connection (a restart always breaks the connections), not at every call,
// on the pooled connections and on the pipelined one alike; a restart is still detected.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "conformance/redis_test_options.h"
#include "conformance/suites/suite.h"
#include "im/redis.h"
#include "store/redis/redis_client.h"
#include "support/redis_commandstats.h"
#include "support/redis_server.h"
#include "support/wait_until.h"

namespace im {
namespace {

using conformance::internal::Must;
using conformance::internal::MustOk;

UserKey U(const std::string& user) { return UserKey{"default", user}; }

AppendRequest Req(uint64_t mid, std::vector<UserKey> recipients) {
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = "default";
  m->from = recipients.front().user;
  m->body = "m" + std::to_string(mid);
  m->ts = 1'700'000'000'000;
  AppendRequest r;
  r.message = std::move(m);
  r.recipients = std::move(recipients);
  r.sender_index = 0;
  return r;
}

// Appends `count` one-message batches through AppendBatchAsync, all in flight together; true
// when every one is answered and stored.
bool AppendAsync(OfflineQueue& q, uint64_t first_mid, int count) {
  auto stored = std::make_shared<std::atomic<int>>(0);
  auto answered = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < count; ++i) {
    auto batch = std::make_shared<std::vector<AppendRequest>>();
    batch->push_back(Req(first_mid + i, {U("alice"), U("bob")}));
    q.AppendBatchAsync(batch, [stored, answered](std::vector<Result<AppendResult>> results) {
      if (results.size() == 1 && results[0].ok()) stored->fetch_add(1);
      answered->fetch_add(1);
    });
  }
  test::WaitUntil([&] { return answered->load() == count; }, 60'000);
  return stored->load() == count;
}

TEST_CASE("OfflineQueue: redis runs INFO once per connection, not per call, and still sees a restart") {
  test::RedisServer server;  // appendfsync everysec: a restart may have lost acked appends
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  std::shared_ptr<internal::RedisClient> stats =
      Must(internal::RedisClient::Create(test::FastFailingRedisOptions(server)));
  // Opens the connections (and checks them).
  Must(q->Append(Req(1, {U("alice"), U("bob")})));
  REQUIRE(AppendAsync(*q, 2, 1));

  const std::map<std::string, uint64_t> before = test::RedisCommandCalls(*stats);
  for (uint64_t mid = 10; mid < 110; ++mid) Must(q->Append(Req(mid, {U("alice"), U("bob")})));
  REQUIRE(AppendAsync(*q, 200, 100));
  MustOk(q->Ack(U("alice"), "phone", 5));
  CHECK(Must(q->Acked(U("alice"), "phone")) == 5);
  const std::string epoch = Must(q->Info(U("alice"))).epoch;
  CHECK(Must(q->Fetch(U("bob"), 0, 10)).entries.size() == 10);
  const std::map<std::string, uint64_t> after = test::RedisCommandCalls(*stats);
  CHECK(test::RedisCallsOf(before, after, "evalsha") >= 204);
  CHECK(test::RedisCallsOf(before, after, "info") == 1);  // the reading's own

  // A restart breaks every connection: the next ones check again and see it.
  server.Restart();
  REQUIRE(test::WaitUntil([&] { return q->Info(U("alice")).ok(); }));
  CHECK(Must(q->Info(U("alice"))).epoch != epoch);
  CHECK(Must(q->Acked(U("alice"), "phone")) == 0);  // made under the old token
  REQUIRE(test::WaitUntil([&] { return AppendAsync(*q, 400, 1); }));
  CHECK(Must(q->Info(U("alice"))).epoch != epoch);
}

}  // namespace
}  // namespace im
