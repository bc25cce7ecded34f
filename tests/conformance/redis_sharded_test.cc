// Redis-only cases of the backends sharded over two redis-servers (a comma list of URLs),
// beside the conformance suites they run as "redis-sharded": group sequence numbers, a retried
// append after one shard failed, and the URL list's errors.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "conformance/redis_test_options.h"
#include "conformance/suites/suite.h"
#include "im/redis.h"
#include "store/redis/redis_shards.h"
#include "support/redis_server.h"

namespace im {
namespace {

using conformance::internal::CheckError;
using conformance::internal::Must;

constexpr TimestampMs kT0 = 1'700'000'000'000;

UserKey U(const std::string& user) { return UserKey{"default", user}; }

RedisOptions TwoShards(const test::RedisServer& a, const test::RedisServer& b) {
  RedisOptions options = test::FastFailingRedisOptions(a);
  options.url = a.url() + "," + b.url();
  return options;
}

// Users named u0, u1, ... until `count` of them are on shard `shard` of a two-shard ring.
std::vector<UserKey> UsersOnShard(size_t shard, size_t count) {
  const internal::ShardRing ring(2);
  std::vector<UserKey> out;
  for (int i = 0; out.size() < count; ++i) {
    UserKey user = U("u" + std::to_string(i));
    if (ring.ShardOf(user) == shard) out.push_back(user);
  }
  return out;
}

AppendRequest GroupReq(uint64_t mid, const std::vector<UserKey>& members, std::string dedup) {
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = "default";
  m->from = members.front().user;
  m->group = "g1";
  m->body = "m" + std::to_string(mid);
  m->ts = kT0 + static_cast<TimestampMs>(mid);
  AppendRequest r;
  r.message = std::move(m);
  r.recipients = members;
  r.sender_index = 0;
  r.dedup_key = std::move(dedup);
  return r;
}

std::vector<InboxEntry> FetchAll(OfflineQueue& q, const UserKey& user) {
  FetchResult page = Must(q.Fetch(user, 0, 500));
  REQUIRE_FALSE(page.more);
  return page.entries;
}

// Two members on each shard.
std::vector<UserKey> SpreadMembers() {
  std::vector<UserKey> members = UsersOnShard(0, 2);
  for (const UserKey& u : UsersOnShard(1, 2)) members.push_back(u);
  return members;
}

TEST_CASE("OfflineQueue: redis-sharded stamps one gseq per group message, in every inbox") {
  test::RedisServer a, b;
  auto q = Must(OpenRedisOfflineQueue(TwoShards(a, b)));
  const std::vector<UserKey> members = SpreadMembers();
  for (uint64_t mid = 1; mid <= 5; ++mid) {
    AppendResult r = Must(q->Append(GroupReq(mid, members, "k" + std::to_string(mid))));
    CHECK_FALSE(r.duplicate);
    CHECK(r.gseq == mid);
    REQUIRE(r.seqs.size() == members.size());
    for (uint64_t seq : r.seqs) CHECK(seq == mid);
  }
  for (const UserKey& user : members) {
    std::vector<InboxEntry> entries = FetchAll(*q, user);
    REQUIRE(entries.size() == 5);
    for (size_t i = 0; i < entries.size(); ++i) {
      CHECK(entries[i].message->mid == i + 1);
      CHECK(entries[i].message->gseq == i + 1);
      CHECK(entries[i].message->group == "g1");
    }
  }
  // A 1:1 message carries none.
  AppendRequest direct = GroupReq(9, {members[0], members[3]}, "direct");
  std::const_pointer_cast<Message>(direct.message)->group.clear();
  CHECK(Must(q->Append(direct)).gseq == 0);
  CHECK(FetchAll(*q, members[3]).back().message->gseq == 0);
}

// A send whose first attempt reached one shard only (the other was down) is completed by its
// retry: every inbox holds it once, under the first attempt's mid, ts and gseq.
TEST_CASE("OfflineQueue: redis-sharded completes a retried append after one shard failed") {
  test::RedisServer a, b;
  auto q = Must(OpenRedisOfflineQueue(TwoShards(a, b)));
  const std::vector<UserKey> members = SpreadMembers();
  Must(q->Append(GroupReq(1, members, "first")));  // gseq 1 on both shards

  // The gseq (group) shard and the shard of members 0 and 1 is the ring's choice; stop the
  // shard that is not the group's, so that the claim succeeds and one part fails.
  const internal::ShardRing ring(2);
  const size_t group_shard = ring.ShardOf(GroupKey{"default", "g1"});
  test::RedisServer& down = group_shard == 0 ? b : a;
  down.Stop();
  Result<AppendResult> failed = q->Append(GroupReq(2, members, "retried"));
  CheckError(failed, Code::kUnavailable, "unavailable");
  down.Start();

  // The retry comes with a new mid and ts (the committer makes them per attempt).
  AppendResult retry;
  for (int attempt = 0; attempt < 100; ++attempt) {
    Result<AppendResult> r = q->Append(GroupReq(7, members, "retried"));
    if (r.ok()) {
      retry = *r;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the reconnect backoff
  }
  CHECK(retry.duplicate);
  CHECK(retry.mid == 2);
  CHECK(retry.ts == kT0 + 2);
  CHECK(retry.gseq == 2);
  CHECK(retry.sender_seq == 2);
  // Once more: nothing changes.
  AppendResult again = Must(q->Append(GroupReq(8, members, "retried")));
  CHECK(again.duplicate);
  CHECK(again.mid == 2);
  for (const UserKey& user : members) {
    std::vector<InboxEntry> entries = FetchAll(*q, user);
    REQUIRE(entries.size() == 2);
    CHECK(entries[1].message->mid == 2);
    CHECK(entries[1].message->gseq == 2);
    CHECK(entries[1].message->ts == kT0 + 2);
  }
  // The next message takes the next gseq: the retry did not take one.
  CHECK(Must(q->Append(GroupReq(10, members, "next"))).gseq == 3);
}

TEST_CASE("OfflineQueue: redis-sharded keeps the batch's dedup within one batch") {
  test::RedisServer a, b;
  auto q = Must(OpenRedisOfflineQueue(TwoShards(a, b)));
  const std::vector<UserKey> members = SpreadMembers();
  std::vector<Result<AppendResult>> r =
      q->AppendBatch({GroupReq(1, members, "same"), GroupReq(2, members, "same")});
  REQUIRE(r.size() == 2);
  CHECK_FALSE(Must(r[0]).duplicate);
  CHECK(Must(r[1]).duplicate);
  CHECK(Must(r[1]).mid == 1);
  for (const UserKey& user : members) CHECK(FetchAll(*q, user).size() == 1);
}

TEST_CASE("Redis backends: a URL list with an empty, repeated or bad entry is refused") {
  for (const std::string url :
       {"redis://127.0.0.1:1/0,,redis://127.0.0.1:2/0", "redis://127.0.0.1:1/0,",
        "redis://127.0.0.1:1/0,redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0,http://x"}) {
    RedisOptions options;
    options.url = url;
    CAPTURE(url);
    CheckError(OpenRedisOfflineQueue(options), Code::kBadRequest, "bad_request");
    CheckError(OpenRedisUserStore(options), Code::kBadRequest, "bad_request");
    CheckError(OpenRedisSessionStore(options), Code::kBadRequest, "bad_request");
    CheckError(OpenRedisGroupService(options), Code::kBadRequest, "bad_request");
  }
}

// Users and groups land on the shard the ring says: each server holds the keys of its own.
TEST_CASE("UserStore: redis-sharded puts each account on its ring shard") {
  test::RedisServer a, b;
  PasswordHashOptions hash;
  hash.ops_limit = 1;
  hash.mem_limit = 8192;
  auto users = Must(OpenRedisUserStore(TwoShards(a, b), hash));
  const internal::ShardRing ring(2);
  std::map<size_t, int> per_shard;
  for (int i = 0; i < 20; ++i) {
    const UserKey user = U("acct" + std::to_string(i));
    Must(users->Create(user, "password-" + std::to_string(i), "", kT0));
    const size_t s = ring.ShardOf(user);
    ++per_shard[s];
    const test::RedisServer& home = s == 0 ? a : b;
    const test::RedisServer& other = s == 0 ? b : a;
    CHECK(home.Command({"EXISTS", "im:{u:default/" + user.user + "}:account"}) == ":1");
    CHECK(other.Command({"EXISTS", "im:{u:default/" + user.user + "}:account"}) == ":0");
  }
  CHECK(per_shard[0] > 0);
  CHECK(per_shard[1] > 0);
}

}  // namespace
}  // namespace im
