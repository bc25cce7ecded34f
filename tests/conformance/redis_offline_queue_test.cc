// Redis-only OfflineQueue cases, beside the conformance suite every backend runs: epochs after
// Redis lost data, durability of an acked append across kill -9 (appendfsync always), each
// batch all or nothing, and what a caller sees while Redis is down.

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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

using namespace conformance::internal;  // NOLINT: the suite's checks (Must, CheckError)

constexpr TimestampMs kT0 = 1'700'000'000'000;

UserKey U(const std::string& user) { return UserKey{"default", user}; }

AppendRequest Req(uint64_t mid, std::vector<UserKey> recipients, std::string dedup_key = {}) {
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = "default";
  m->from = recipients.front().user;
  m->body = "m" + std::to_string(mid);
  m->ts = kT0;
  AppendRequest r;
  r.message = std::move(m);
  r.recipients = std::move(recipients);
  r.sender_index = 0;
  r.dedup_key = std::move(dedup_key);
  return r;
}

std::vector<InboxEntry> FetchAll(OfflineQueue& q, const UserKey& user) {
  std::vector<InboxEntry> all;
  uint64_t after = 0;
  for (;;) {
    FetchResult page = Must(q.Fetch(user, after, 500));
    all.insert(all.end(), page.entries.begin(), page.entries.end());
    if (!page.more) return all;
    after = page.entries.back().seq;
  }
}

// Records which mid each (epoch, seq) of an inbox held; a seq handed out twice under one epoch
// for different messages fails the check.
class SeqWitness {
 public:
  void See(OfflineQueue& q, const UserKey& user) {
    const std::string epoch = Must(q.Fetch(user, 0, 1)).epoch;
    for (const InboxEntry& e : FetchAll(q, user)) {
      auto [it, inserted] = seen_.emplace(std::make_pair(epoch, e.seq), e.message->mid);
      CHECK_MESSAGE(it->second == e.message->mid,
                    "seq " << e.seq << " reused under epoch " << epoch);
      (void)inserted;
    }
  }

 private:
  std::map<std::pair<std::string, uint64_t>, uint64_t> seen_;
};

// Appends to alice and bob, has `lose` make Redis lose everything, and checks that both inboxes
// start again under new epochs.
template <typename Lose>
void CheckNewEpochsAfterTotalLoss(Lose lose) {
  test::RedisServer server(test::RedisServerOptions{"everysec", {"appendonly no"}});
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  SeqWitness witness;
  for (uint64_t mid = 1; mid <= 3; ++mid) Must(q->Append(Req(mid, {U("alice"), U("bob")})));
  const std::string epoch = Must(q->Info(U("alice"))).epoch;
  witness.See(*q, U("alice"));

  lose(server);
  // The first call after a restart may see the dropped connection.
  REQUIRE(test::WaitUntil([&] { return q->Info(U("alice")).ok(); }));
  InboxInfo info = Must(q->Info(U("alice")));
  CHECK(info.epoch != epoch);
  CHECK(info.last_seq == 0);
  CHECK(Must(q->Append(Req(10, {U("alice")}))).seqs == std::vector<uint64_t>{1});
  witness.See(*q, U("alice"));
  CHECK(Must(q->Info(U("bob"))).epoch != epoch);
}

TEST_CASE("OfflineQueue: redis starts new epochs after FLUSHALL") {
  CheckNewEpochsAfterTotalLoss([](test::RedisServer& server) { server.FlushAll(); });
}

TEST_CASE("OfflineQueue: redis starts new epochs after a restart without persistence") {
  CheckNewEpochsAfterTotalLoss([](test::RedisServer& server) { server.Restart(); });
}

// With appendfsync everysec a machine crash loses the writes not yet fsynced: simulated by
// kill -9 and cutting the tail off the AOF. The counter comes back lower, so seqs are handed out
// again: under a new epoch.
TEST_CASE("OfflineQueue: redis changes the epoch when a restart may have lost acked appends") {
  test::RedisServer server;  // appendfsync everysec
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  SeqWitness witness;
  for (uint64_t mid = 1; mid <= 5; ++mid) Must(q->Append(Req(mid, {U("alice")})));
  const InboxInfo before = Must(q->Info(U("alice")));
  CHECK(before.last_seq == 5);
  witness.See(*q, U("alice"));

  server.Kill9();
  std::filesystem::path aof;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(server.dir()) / "appendonlydir")) {
    if (entry.path().string().find(".incr.aof") != std::string::npos) aof = entry.path();
  }
  REQUIRE_FALSE(aof.empty());
  // Into the last transaction (the last append): Redis drops an incomplete MULTI at load.
  std::filesystem::resize_file(aof, std::filesystem::file_size(aof) - 5);
  server.Start();

  REQUIRE(test::WaitUntil([&] { return q->Info(U("alice")).ok(); }));
  const InboxInfo after = Must(q->Info(U("alice")));
  CHECK(after.last_seq < before.last_seq);  // the loss happened
  CHECK(after.epoch != before.epoch);
  AppendResult next = Must(q->Append(Req(100, {U("alice")})));
  CHECK(next.seqs[0] <= before.last_seq);                 // a seq handed out again ...
  witness.See(*q, U("alice"));                            // ... but not under the old epoch
  CHECK(Must(q->Info(U("alice"))).epoch == after.epoch);  // stable from then on
}

// appendfsync always: whatever AppendBatch acknowledged survives kill -9 of redis-server, the
// epoch stays (nothing acked can have been lost), and every batch is there whole or not at all.
TEST_CASE("OfflineQueue: redis with appendfsync always keeps every acked batch across kill -9") {
  test::RedisServer server(test::RedisServerOptions{"always", {}});
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  const std::vector<UserKey> members = {U("m0"), U("m1"), U("m2"), U("m3")};
  const std::string epoch = Must(q->Info(U("m0"))).epoch;

  constexpr int kThreads = 3;
  std::atomic<uint64_t> next_mid{1};
  std::atomic<int> acked_batches{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::vector<uint64_t>> acked;  // mids of each acknowledged batch
  std::vector<std::vector<uint64_t>> sent;   // mids of every batch tried
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&] {
      while (!stop.load()) {
        std::vector<AppendRequest> batch;
        std::vector<uint64_t> mids;
        for (int i = 0; i < 3; ++i) {
          mids.push_back(next_mid++);
          batch.push_back(Req(mids.back(), members));
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          sent.push_back(mids);
        }
        std::vector<Result<AppendResult>> results = q->AppendBatch(batch);
        bool all_ok = true;
        for (const auto& r : results) all_ok = all_ok && r.ok();
        if (all_ok) {
          std::lock_guard<std::mutex> lock(mu);
          acked.push_back(mids);
          ++acked_batches;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
    });
  }
  REQUIRE(test::WaitUntil([&] { return acked_batches.load() >= 50; }));
  server.Kill9();  // mid-stream: the senders are appending
  server.Start();
  REQUIRE(test::WaitUntil([&] { return acked_batches.load() >= 100; }));
  stop = true;
  for (std::thread& t : senders) t.join();

  CHECK(Must(q->Info(U("m0"))).epoch == epoch);
  std::vector<std::vector<uint64_t>> inboxes;
  for (const UserKey& member : members) {
    std::vector<uint64_t> mids;
    uint64_t expected_seq = 1;
    for (const InboxEntry& e : FetchAll(*q, member)) {
      CHECK(e.seq == expected_seq++);  // gapless
      mids.push_back(e.message->mid);
    }
    inboxes.push_back(std::move(mids));
  }
  // The same messages in the same order in every inbox (all four got every batch).
  for (size_t i = 1; i < inboxes.size(); ++i) CHECK(inboxes[i] == inboxes[0]);
  const std::set<uint64_t> stored(inboxes[0].begin(), inboxes[0].end());
  for (const std::vector<uint64_t>& batch : acked) {
    for (uint64_t mid : batch)
      CHECK_MESSAGE(stored.count(mid) == 1, "acked mid " << mid << " lost");
  }
  for (const std::vector<uint64_t>& batch : sent) {
    size_t present = 0;
    for (uint64_t mid : batch) present += stored.count(mid);
    CHECK_MESSAGE((present == 0 || present == batch.size()), "a batch was stored in part");
  }
}

// Two queues on one Redis stand for two nodes: their senders race on overlapping inboxes, and
// every pair of inboxes still holds the messages they share in one relative order.
TEST_CASE("OfflineQueue: redis keeps one relative order across nodes") {
  test::RedisServer server;
  std::vector<std::shared_ptr<OfflineQueue>> nodes;
  for (int n = 0; n < 2; ++n) {
    nodes.push_back(Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server))));
  }
  constexpr int kUsers = 5;
  std::atomic<uint64_t> next_mid{1};
  std::atomic<int> failed{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 6; ++t) {
    senders.emplace_back([&, t] {
      OfflineQueue& q = *nodes[t % 2];
      for (int i = 0; i < 150; ++i) {
        std::vector<UserKey> to;  // a group of all, or a pair
        const int a = (t + i) % kUsers;
        to.push_back(U("u" + std::to_string(a)));
        for (int b = 0; b < kUsers; ++b) {
          if (b != a && (i % 3 == 0 || b == (a + 1) % kUsers))
            to.push_back(U("u" + std::to_string(b)));
        }
        if (!q.Append(Req(next_mid++, to)).ok()) ++failed;
      }
    });
  }
  for (std::thread& t : senders) t.join();
  CHECK(failed.load() == 0);

  std::vector<std::vector<uint64_t>> inboxes;
  for (int u = 0; u < kUsers; ++u) {
    std::vector<uint64_t> mids;
    for (const InboxEntry& e : FetchAll(*nodes[u % 2], U("u" + std::to_string(u)))) {
      mids.push_back(e.message->mid);
    }
    inboxes.push_back(std::move(mids));
  }
  for (int a = 0; a < kUsers; ++a) {
    for (int b = a + 1; b < kUsers; ++b) {
      const std::set<uint64_t> in_b(inboxes[b].begin(), inboxes[b].end());
      const std::set<uint64_t> in_a(inboxes[a].begin(), inboxes[a].end());
      std::vector<uint64_t> shared_a, shared_b;
      for (uint64_t mid : inboxes[a]) {
        if (in_b.count(mid)) shared_a.push_back(mid);
      }
      for (uint64_t mid : inboxes[b]) {
        if (in_a.count(mid)) shared_b.push_back(mid);
      }
      CHECK_FALSE(shared_a.empty());
      CHECK(shared_a == shared_b);
    }
  }
}

// Expire works in bounded scripts (at most 100 inboxes and 2,000 deletions each) and loops until
// nothing old is left: 3,000 entries over 150 inboxes need several.
TEST_CASE("OfflineQueue: redis Expire sweeps past one script's bound") {
  test::RedisServer server;
  OfflineQueueOptions options;
  options.retention_ms = 1000;
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server), options));
  std::vector<AppendRequest> batch;
  uint64_t mid = 1;
  for (int user = 0; user < 150; ++user) {
    for (int i = 0; i < 20; ++i) batch.push_back(Req(mid++, {U("u" + std::to_string(user))}));
  }
  for (const auto& r : q->AppendBatch(batch)) MustOk(r.status());
  AppendRequest young = Req(mid, {U("u1")});
  auto message = std::make_shared<Message>(*young.message);
  message->ts = kT0 + 5000;
  young.message = message;
  Must(q->Append(young));

  CHECK(Must(q->Expire(kT0 + 2000)) == 3000);
  for (int user = 0; user < 150; ++user) {
    FetchResult r = Must(q->Fetch(U("u" + std::to_string(user)), 0, 500));
    CHECK(r.gap);
    CHECK(r.entries.size() == (user == 1 ? 1u : 0u));
  }
  CHECK(server.Command({"ZCARD", "im:inbox-heads"}) == ":1");
}

std::shared_ptr<OfflineQueue> OpenWith(const test::RedisServer& server, int64_t retention_ms,
                                       int64_t dedup_window_ms) {
  OfflineQueueOptions options;
  options.retention_ms = retention_ms;
  options.dedup_window_ms = dedup_window_ms;
  return Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server), options));
}

// The milliseconds left on `key` (PTTL: -1 without a TTL, -2 when gone).
int64_t Pttl(const test::RedisServer& server, const std::string& key) {
  return std::stoll(server.Command({"PTTL", key}).substr(1));
}

// A body has a TTL of the retention period (plus as much again, at most a minute) and a dedup
// record one of the window plus a minute; no index lists them. A body gone with its TTL is a
// `gap` in Fetch, its entry skipped.
TEST_CASE("OfflineQueue: redis bodies and dedup records expire with their TTLs") {
  test::RedisServer server;
  std::shared_ptr<OfflineQueue> q = OpenWith(server, 400, 5000);
  Must(q->Append(Req(1, {U("alice"), U("bob")}, "alice/c1")));
  const int64_t body_ttl = Pttl(server, "im:{m:default/1}:body");
  CHECK(body_ttl > 0);
  CHECK(body_ttl <= 800);
  const int64_t dedup_ttl = Pttl(server, "im:{d:default/alice%2Fc1}:dedup");
  CHECK(dedup_ttl > 5000);
  CHECK(dedup_ttl <= 65000);
  CHECK(server.Command({"EXISTS", "im:message-index", "im:dedup-index"}) == ":0");
  CHECK(FetchAll(*q, U("bob")).size() == 1);

  REQUIRE(test::WaitUntil([&] { return Pttl(server, "im:{m:default/1}:body") == -2; }));
  FetchResult bob = Must(q->Fetch(U("bob"), 0, 10));
  CHECK(bob.gap);
  CHECK(bob.entries.empty());
  CHECK(bob.last_seq == 1);
  // The dedup record outlives the body: a retry is still a duplicate.
  CHECK(Must(q->Append(Req(2, {U("alice"), U("bob")}, "alice/c1"))).duplicate);
}

// One append call gives each inbox its seqs in one HINCRBY and its entries in one RPUSH, however
// many of the call's messages go to it; seqs and entries still follow the batch's order, the
// trim to max_inbox keeps the newest entries, and a retry inside the batch is a duplicate.
TEST_CASE("OfflineQueue: redis appends one call's entries to each inbox with one HINCRBY and RPUSH") {
  test::RedisServer server;
  OfflineQueueOptions options;
  options.max_inbox = 4;
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server), options));
  std::shared_ptr<internal::RedisClient> stats =
      Must(internal::RedisClient::Create(test::FastFailingRedisOptions(server)));
  Must(q->Append(Req(1, {U("alice"), U("bob")})));
  const std::map<std::string, uint64_t> before = test::RedisCommandCalls(*stats);
  std::vector<AppendRequest> batch;
  for (uint64_t mid = 2; mid <= 7; ++mid) {
    batch.push_back(Req(mid, {U("alice"), U("bob")}, "alice/c" + std::to_string(mid)));
  }
  batch.push_back(Req(8, {U("alice"), U("carol")}));
  batch.push_back(Req(9, {U("alice"), U("bob")}, "alice/c3"));  // a retry of mid 3
  batch.push_back(Req(10, {U("carol"), U("bob"), U("alice")}));
  std::vector<Result<AppendResult>> results = q->AppendBatch(batch);
  REQUIRE(results.size() == batch.size());
  for (uint64_t mid = 2; mid <= 7; ++mid) {
    REQUIRE(results[mid - 2].ok());
    CHECK(results[mid - 2]->seqs == std::vector<uint64_t>{mid, mid});
  }
  CHECK(results[6]->seqs == std::vector<uint64_t>{8, 1});
  REQUIRE(results[7].ok());
  CHECK(results[7]->duplicate);
  CHECK(results[7]->mid == 3);
  CHECK(results[7]->sender_seq == 3);
  CHECK(results[8]->seqs == std::vector<uint64_t>{2, 8, 9});
  const std::map<std::string, uint64_t> after = test::RedisCommandCalls(*stats);
  CHECK(test::RedisCallsOf(before, after, "hincrby") == 3);
  CHECK(test::RedisCallsOf(before, after, "rpush") == 3);

  std::vector<uint64_t> bob_mids;
  for (const InboxEntry& e : FetchAll(*q, U("bob"))) bob_mids.push_back(e.message->mid);
  CHECK(bob_mids == std::vector<uint64_t>{5, 6, 7, 10});
  CHECK(Must(q->Info(U("bob"))).last_seq == 8);
  std::vector<uint64_t> alice_seqs;
  for (const InboxEntry& e : FetchAll(*q, U("alice"))) alice_seqs.push_back(e.seq);
  CHECK(alice_seqs == std::vector<uint64_t>{6, 7, 8, 9});
  std::vector<uint64_t> carol_mids;
  for (const InboxEntry& e : FetchAll(*q, U("carol"))) carol_mids.push_back(e.message->mid);
  CHECK(carol_mids == std::vector<uint64_t>{8, 10});
  // The heads index holds each inbox at its oldest entry's time.
  CHECK(server.Command({"ZCARD", "im:inbox-heads"}) == ":3");
}

// Bodies and dedup keys that an earlier version listed in its sweep indexes (a body then had no
// TTL) are deleted by Expire, by the same rules as before: a body older than the retention
// period, a dedup key recorded before the window; the younger ones stay.
TEST_CASE("OfflineQueue: redis Expire drains the indexes of earlier versions") {
  test::RedisServer server;
  std::shared_ptr<OfflineQueue> q = OpenWith(server, 1000, 1000);
  const std::string old_body = "im:{m:default/7}:body";
  const std::string young_body = "im:{m:default/8}:body";
  const std::string old_dedup = "im:{d:default/alice%2Fold}:dedup";
  CHECK(server.Command({"SET", old_body, "x"}) == "+OK");
  CHECK(server.Command({"SET", young_body, "x"}) == "+OK");
  CHECK(server.Command({"SET", old_dedup, "7 0 1 0"}) == "+OK");
  CHECK(server.Command({"ZADD", "im:message-index", std::to_string(kT0 - 5000), old_body,
                        std::to_string(kT0), young_body}) == ":2");
  CHECK(server.Command({"ZADD", "im:dedup-index", std::to_string(kT0 - 5000), old_dedup}) ==
        ":1");

  Must(q->Expire(kT0));
  CHECK(server.Command({"EXISTS", old_body, old_dedup}) == ":0");
  CHECK(server.Command({"EXISTS", young_body}) == ":1");
  CHECK(server.Command({"ZCARD", "im:message-index"}) == ":1");
  CHECK(server.Command({"EXISTS", "im:dedup-index"}) == ":0");
  Must(q->Expire(kT0 + 2000));
  CHECK(server.Command({"EXISTS", young_body, "im:message-index"}) == ":0");
}

// An ack is kept in the inbox hash (`ack:<device>`), so one read gives the seq and the ack; an
// ack an earlier version kept in the `acks` hash still counts, until a higher one replaces it.
TEST_CASE("OfflineQueue: redis acks live in the inbox hash - an earlier version's acks count") {
  test::RedisServer server;
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  for (uint64_t mid = 1; mid <= 5; ++mid) Must(q->Append(Req(mid, {U("alice")})));
  MustOk(q->Ack(U("alice"), "phone", 3));
  const std::string inbox = "im:{u:default/alice}:inbox";
  const std::string acks = "im:{u:default/alice}:acks";
  CHECK(server.Command({"HEXISTS", inbox, "ack:phone"}) == ":1");
  CHECK(server.Command({"EXISTS", acks}) == ":0");
  // Where an earlier version kept it: moved into the acks hash, as it would have written it.
  static const char kMove[] =
      "redis.call('HSET', KEYS[2], ARGV[2], redis.call('HGET', KEYS[1], ARGV[1])) "
      "return redis.call('HDEL', KEYS[1], ARGV[1])";
  CHECK(server.Command({"EVAL", kMove, "2", inbox, acks, "ack:phone", "phone"}) == ":1");
  CHECK(Must(q->Acked(U("alice"), "phone")) == 3);
  MustOk(q->Ack(U("alice"), "phone", 2));  // lower than the earlier version's: ignored
  CHECK(Must(q->Acked(U("alice"), "phone")) == 3);
  MustOk(q->Ack(U("alice"), "phone", 4));
  CHECK(Must(q->Acked(U("alice"), "phone")) == 4);
  CHECK(Must(q->Acked(U("alice"), "tablet")) == 0);
  CheckError(q->Ack(U("alice"), "phone", 6), Code::kBadRequest, "bad_request");
}

TEST_CASE("OfflineQueue: redis answers 503 while Redis is down and recovers by itself") {
  test::RedisServer server;
  std::shared_ptr<OfflineQueue> q =
      Must(OpenRedisOfflineQueue(test::FastFailingRedisOptions(server)));
  Must(q->Append(Req(1, {U("alice"), U("bob")}, "alice/c1")));
  MustOk(q->Ack(U("alice"), "phone", 1));
  server.Stop();
  CheckError(q->Append(Req(2, {U("alice"), U("bob")})), Code::kUnavailable, "unavailable");
  std::vector<Result<AppendResult>> batch =
      q->AppendBatch({Req(3, {U("alice")}), Req(4, {U("bob")})});
  REQUIRE(batch.size() == 2);
  for (const auto& r : batch) CheckError(r, Code::kUnavailable, "unavailable");
  CheckError(q->Fetch(U("alice"), 0, 10), Code::kUnavailable, "unavailable");
  CheckError(q->Info(U("alice")), Code::kUnavailable, "unavailable");
  CheckError(q->Ack(U("alice"), "phone", 1), Code::kUnavailable, "unavailable");
  CheckError(q->Acked(U("alice"), "phone"), Code::kUnavailable, "unavailable");
  CheckError(q->Expire(kT0), Code::kUnavailable, "unavailable");

  server.Start();  // SIGTERM wrote the AOF: the data is back
  REQUIRE(test::WaitUntil([&] { return q->Info(U("alice")).ok(); }));
  // A retry of the first send is still a duplicate; the 503 appends stored nothing.
  AppendResult retry = Must(q->Append(Req(9, {U("alice"), U("bob")}, "alice/c1")));
  CHECK(retry.duplicate);
  CHECK(retry.mid == 1);
  std::vector<InboxEntry> bob = FetchAll(*q, U("bob"));
  REQUIRE(bob.size() == 1);
  CHECK(bob[0].message->mid == 1);
  CHECK(Must(q->Append(Req(5, {U("alice")}))).seqs == std::vector<uint64_t>{2});
}

}  // namespace
}  // namespace im
