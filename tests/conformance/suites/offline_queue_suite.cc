// OfflineQueue conformance: every backend added (im::conformance::AddBackend or
// RunOfflineQueueSuite) runs the same cases. `open` must return an empty queue; a persistent
// backend also sets `reopen`, which closes nothing itself (the caller drops the old instance
// first) and opens the data of the last `open` again. The project's LevelDB-only cases live in
// tests/conformance/leveldb_offline_queue_test.cc.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "suites/suite.h"

namespace im {
namespace conformance::internal {
void LinkOfflineQueueSuite() {}
}  // namespace conformance::internal

namespace {

using conformance::OfflineQueueBackend;
using conformance::internal::CheckError;
using conformance::internal::Must;
using conformance::internal::MustOk;

template <typename Body>
void ForEachBackend(Body body) {
  conformance::internal::ForEachBackend<OfflineQueueBackend>(body);
}

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimestampMs now) : now_(now) {}
  TimestampMs NowMs() const override { return now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<TimestampMs> now_;
};

constexpr TimestampMs kT0 = 1'700'000'000'000;

UserKey U(const std::string& user, const std::string& tenant = "default") {
  return UserKey{tenant, user};
}

std::shared_ptr<const Message> Msg(uint64_t mid, const std::string& from, const std::string& body,
                                   TimestampMs ts = kT0, const std::string& tenant = "default") {
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = tenant;
  m->from = from;
  m->body = body;
  m->ts = ts;
  return m;
}

AppendRequest Req(std::shared_ptr<const Message> message, std::vector<UserKey> recipients,
                  int sender_index = 0, std::string dedup_key = {}) {
  AppendRequest r;
  r.message = std::move(message);
  r.recipients = std::move(recipients);
  r.sender_index = sender_index;
  r.dedup_key = std::move(dedup_key);
  return r;
}

FetchResult MustFetch(OfflineQueue& q, const UserKey& user, uint64_t after, size_t limit = 500) {
  return Must(q.Fetch(user, after, limit));
}

// Every retained entry of `user`, paging through Fetch.
std::vector<InboxEntry> FetchAll(OfflineQueue& q, const UserKey& user) {
  std::vector<InboxEntry> all;
  uint64_t after = 0;
  for (;;) {
    FetchResult page = MustFetch(q, user, after);
    all.insert(all.end(), page.entries.begin(), page.entries.end());
    if (!page.more) return all;
    REQUIRE(!page.entries.empty());
    after = page.entries.back().seq;
  }
}

std::vector<uint64_t> Seqs(const std::vector<InboxEntry>& entries) {
  std::vector<uint64_t> seqs;
  for (const InboxEntry& e : entries) seqs.push_back(e.seq);
  return seqs;
}

// Runs fn(thread_index) on `threads` threads that start together, so that their calls race.
template <typename Fn>
void RunConcurrently(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ++ready;
      while (ready.load() < threads) std::this_thread::yield();
      fn(t);
    });
  }
  for (std::thread& thread : pool) thread.join();
}

TEST_CASE("OfflineQueue: each recipient gets its own consecutive seqs") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    for (uint64_t i = 1; i <= 3; ++i) {
      AppendResult r = Must(q->Append(Req(Msg(100 + i, "alice", "hi"), {U("alice"), U("bob")})));
      CHECK_FALSE(r.duplicate);
      CHECK(r.mid == 100 + i);
      CHECK(r.ts == kT0);
      CHECK(r.seqs == std::vector<uint64_t>{i, i});
      CHECK(r.sender_seq == i);
    }
    // bob's inbox moves on independently; carol starts at 1; sender_index picks bob's seq.
    AppendResult r = Must(q->Append(Req(Msg(200, "bob", "yo"), {U("carol"), U("bob")}, 1)));
    CHECK(r.seqs == std::vector<uint64_t>{1, 4});
    CHECK(r.sender_seq == 4);
    // A server-side send has no sender inbox.
    r = Must(q->Append(Req(Msg(201, "", "notice"), {U("carol")}, -1)));
    CHECK(r.sender_seq == 0);
    CHECK(r.seqs == std::vector<uint64_t>{2});

    std::vector<InboxEntry> alice = FetchAll(*q, U("alice"));
    CHECK(Seqs(alice) == std::vector<uint64_t>{1, 2, 3});
    std::vector<InboxEntry> bob = FetchAll(*q, U("bob"));
    CHECK(Seqs(bob) == std::vector<uint64_t>{1, 2, 3, 4});
    REQUIRE(bob.size() == 4);
    CHECK(bob[3].message->mid == 200);
    CHECK(bob[0].message->from == "alice");
    CHECK(Seqs(FetchAll(*q, U("carol"))) == std::vector<uint64_t>{1, 2});
  });
}

TEST_CASE("OfflineQueue: one message indexed into many inboxes") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    auto m = std::make_shared<Message>(*Msg(7, "u0", "hello group"));
    m->group = "g1";
    m->type = "text";
    m->extra = R"({"k":1})";
    std::vector<UserKey> members;
    for (int i = 0; i < 50; ++i) members.push_back(U("u" + std::to_string(i)));
    AppendResult r = Must(q->Append(Req(m, members, 0)));
    CHECK(r.seqs == std::vector<uint64_t>(50, 1));
    for (const UserKey& user : members) {
      std::vector<InboxEntry> entries = FetchAll(*q, user);
      REQUIRE(entries.size() == 1);
      const Message& got = *entries[0].message;
      CHECK(got.mid == 7);
      CHECK(got.tenant == "default");
      CHECK(got.from == "u0");
      CHECK(got.group == "g1");
      CHECK(got.body == "hello group");
      CHECK(got.extra == m->extra);
      CHECK(got.ts == kT0);
    }
  });
}

TEST_CASE("OfflineQueue: fetch pages with more and reports first_seq and last_seq") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    for (size_t bad : {size_t{0}, size_t{501}}) {
      CHECK(q->Fetch(U("bob"), 0, bad).status().code() == Code::kBadRequest);
    }
    FetchResult empty = MustFetch(*q, U("bob"), 0);
    CHECK(empty.entries.empty());
    CHECK(empty.first_seq == 0);
    CHECK(empty.last_seq == 0);
    CHECK_FALSE(empty.more);
    CHECK_FALSE(empty.gap);

    for (uint64_t i = 1; i <= 25; ++i) Must(q->Append(Req(Msg(i, "a", "m"), {U("bob")}, -1)));
    FetchResult p1 = MustFetch(*q, U("bob"), 0, 10);
    CHECK(Seqs(p1.entries) == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(p1.more);
    CHECK(p1.first_seq == 1);
    CHECK(p1.last_seq == 25);
    CHECK_FALSE(p1.gap);
    FetchResult p2 = MustFetch(*q, U("bob"), 10, 10);
    CHECK(p2.entries.front().seq == 11);
    CHECK(p2.entries.back().seq == 20);
    CHECK(p2.more);
    FetchResult p3 = MustFetch(*q, U("bob"), 20, 10);
    CHECK(Seqs(p3.entries) == std::vector<uint64_t>{21, 22, 23, 24, 25});
    CHECK_FALSE(p3.more);
    CHECK(p3.entries[0].message->mid == 21);
    FetchResult exact = MustFetch(*q, U("bob"), 15, 10);  // ends exactly at last_seq
    CHECK(exact.entries.size() == 10);
    CHECK_FALSE(exact.more);
    CHECK(p1.epoch == p3.epoch);
    CHECK(MustFetch(*q, U("bob"), 0, 500).entries.size() == 25);
    for (uint64_t after : {uint64_t{25}, uint64_t{99}}) {  // at or past the end
      FetchResult r = MustFetch(*q, U("bob"), after);
      CHECK(r.entries.empty());
      CHECK_FALSE(r.more);
      CHECK_FALSE(r.gap);
      CHECK(r.last_seq == 25);
    }
  });
}

TEST_CASE("OfflineQueue: dedup returns the first append and appends nothing") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    AppendResult first =
        Must(q->Append(Req(Msg(10, "alice", "one", kT0), {U("alice"), U("bob")}, 0, "alice/c1")));
    Must(q->Append(Req(Msg(11, "bob", "other"), {U("bob"), U("alice")}, 0, "bob/c1")));
    // A retry of the same cid, even with another body, mid and ts, is the same message.
    AppendResult again = Must(
        q->Append(Req(Msg(12, "alice", "two", kT0 + 5), {U("alice"), U("bob")}, 0, "alice/c1")));
    CHECK(again.duplicate);
    CHECK(again.mid == first.mid);
    CHECK(again.ts == kT0);
    CHECK(again.sender_seq == first.sender_seq);
    CHECK(again.sender_seq == 1);
    CHECK(again.seqs.empty());
    std::vector<InboxEntry> bob = FetchAll(*q, U("bob"));
    REQUIRE(bob.size() == 2);
    CHECK(bob[0].message->body == "one");
    CHECK(Must(q->Info(U("alice"))).last_seq == 2);
    // Without a key there is no dedup.
    Must(q->Append(Req(Msg(13, "alice", "x"), {U("alice")})));
    CHECK_FALSE(Must(q->Append(Req(Msg(13, "alice", "x"), {U("alice")}))).duplicate);
  });
}

TEST_CASE("OfflineQueue: dedup keys are forgotten after the window") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    FakeClock clock(kT0);
    OfflineQueueOptions options;
    options.dedup_window_ms = 1000;
    options.clock = &clock;
    auto q = backend.open(options);
    Must(q->Append(Req(Msg(1, "a", "m"), {U("a")}, 0, "k")));
    clock.Advance(999);
    CHECK(Must(q->Append(Req(Msg(2, "a", "m"), {U("a")}, 0, "k"))).duplicate);
    SUBCASE("checked at lookup, without a sweep") {
      clock.Advance(2);
      AppendResult r = Must(q->Append(Req(Msg(3, "a", "m"), {U("a")}, 0, "k")));
      CHECK_FALSE(r.duplicate);
      CHECK(r.sender_seq == 2);
      CHECK(r.mid == 3);
      // The new append starts a new window.
      CHECK(Must(q->Append(Req(Msg(4, "a", "m"), {U("a")}, 0, "k"))).mid == 3);
    }
    SUBCASE("dropped by a sweep") {
      // The sweep's `now` is past the window while the clock is not: only the sweep can have
      // forgotten the key.
      CHECK(Must(q->Expire(kT0 + 1001)) == 0);  // dedup keys are not inbox entries
      CHECK_FALSE(Must(q->Append(Req(Msg(3, "a", "m"), {U("a")}, 0, "k"))).duplicate);
    }
  });
}

TEST_CASE("OfflineQueue: retention by age leaves a gap and never reuses seqs") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    OfflineQueueOptions options;
    options.retention_ms = 1000;
    auto q = backend.open(options);
    const std::string epoch = Must(q->Info(U("bob"))).epoch;
    for (uint64_t i = 1; i <= 3; ++i) {
      Must(q->Append(Req(Msg(i, "a", "m", kT0 + 100 * static_cast<int64_t>(i)), {U("bob")}, -1)));
    }
    CHECK(Must(q->Expire(kT0 + 1250)) == 2);  // drops ts 100 and 200
    FetchResult r = MustFetch(*q, U("bob"), 0);
    CHECK(Seqs(r.entries) == std::vector<uint64_t>{3});
    CHECK(r.first_seq == 3);
    CHECK(r.last_seq == 3);
    CHECK(r.gap);
    CHECK(MustFetch(*q, U("bob"), 1).gap);
    CHECK_FALSE(MustFetch(*q, U("bob"), 2).gap);  // nothing after 2 was dropped

    CHECK(Must(q->Expire(kT0 + 100000)) == 1);
    r = MustFetch(*q, U("bob"), 0);
    CHECK(r.entries.empty());
    CHECK(r.first_seq == 0);
    CHECK(r.last_seq == 3);
    CHECK(r.gap);
    CHECK_FALSE(MustFetch(*q, U("bob"), 3).gap);

    AppendResult next = Must(q->Append(Req(Msg(4, "a", "m", kT0 + 100000), {U("bob")}, -1)));
    CHECK(next.seqs == std::vector<uint64_t>{4});
    InboxInfo info = Must(q->Info(U("bob")));
    CHECK(info.first_seq == 4);
    CHECK(info.last_seq == 4);
    CHECK(info.epoch == epoch);
  });
}

TEST_CASE("OfflineQueue: inboxes are trimmed to max_inbox") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    OfflineQueueOptions options;
    options.max_inbox = 5;
    auto q = backend.open(options);
    for (uint64_t i = 1; i <= 8; ++i) Must(q->Append(Req(Msg(i, "a", "m"), {U("bob")}, -1)));
    Must(q->Append(Req(Msg(9, "a", "m"), {U("carol")}, -1)));
    // A backend may trim on append or only in the sweep; after a sweep both agree.
    Must(q->Expire(kT0));
    FetchResult r = MustFetch(*q, U("bob"), 0);
    CHECK(Seqs(r.entries) == std::vector<uint64_t>{4, 5, 6, 7, 8});
    CHECK(r.first_seq == 4);
    CHECK(r.last_seq == 8);
    CHECK(r.gap);
    CHECK_FALSE(MustFetch(*q, U("bob"), 3).gap);
    CHECK(FetchAll(*q, U("carol")).size() == 1);
    CHECK(Must(q->Append(Req(Msg(10, "a", "m"), {U("bob")}, -1))).seqs[0] == 9);
  });
}

TEST_CASE("OfflineQueue: acks are cumulative per device") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    for (uint64_t i = 1; i <= 3; ++i) Must(q->Append(Req(Msg(i, "a", "m"), {U("bob")}, -1)));
    CHECK(Must(q->Acked(U("bob"), "phone")) == 0);
    CHECK(q->Ack(U("bob"), "phone", 2).ok());
    CHECK(Must(q->Acked(U("bob"), "phone")) == 2);
    CHECK(q->Ack(U("bob"), "phone", 1).ok());  // lower: ignored
    CHECK(Must(q->Acked(U("bob"), "phone")) == 2);
    Status beyond = q->Ack(U("bob"), "phone", 4);
    CHECK(beyond.code() == Code::kBadRequest);
    CHECK(Must(q->Acked(U("bob"), "phone")) == 2);

    CHECK(Must(q->Acked(U("bob"), "web")) == 0);  // devices are independent
    CHECK(q->Ack(U("bob"), "web", 3).ok());
    CHECK(Must(q->Acked(U("bob"), "web")) == 3);
    CHECK(Must(q->Acked(U("bob"), "phone")) == 2);

    CHECK(Must(q->Acked(U("nobody"), "phone")) == 0);
    CHECK(q->Ack(U("nobody"), "phone", 1).code() == Code::kBadRequest);
    CHECK(q->Ack(U("nobody"), "phone", 0).ok());
  });
}

TEST_CASE("OfflineQueue: epochs are stable per inbox and distinct between users") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    const std::string alice = Must(q->Info(U("alice"))).epoch;
    CHECK_FALSE(alice.empty());
    CHECK(Must(q->Info(U("alice"))).epoch == alice);
    Must(q->Append(Req(Msg(1, "alice", "m"), {U("alice"), U("bob")})));
    CHECK(MustFetch(*q, U("alice"), 0).epoch == alice);
    CHECK(Must(q->Info(U("alice"))).epoch == alice);
    const std::string bob = MustFetch(*q, U("bob"), 0).epoch;
    CHECK_FALSE(bob.empty());
    CHECK(bob != alice);
    CHECK(Must(q->Info(U("bob"))).epoch == bob);
    // Another empty queue is a new start and must not reuse the epoch.
    CHECK(Must(backend.open({})->Info(U("alice"))).epoch != alice);
  });
}

TEST_CASE("OfflineQueue: tenants are isolated") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    const UserKey a1 = U("alice", "t1");
    const UserKey a2 = U("alice", "t2");
    Must(q->Append(Req(Msg(1, "alice", "in t1", kT0, "t1"), {a1}, 0, "alice/c1")));
    Must(q->Append(Req(Msg(2, "alice", "in t1", kT0, "t1"), {a1}, 0)));
    CHECK(Must(q->Info(a2)).last_seq == 0);
    // The same dedup key in another tenant is another message.
    AppendResult r = Must(q->Append(Req(Msg(3, "alice", "in t2", kT0, "t2"), {a2}, 0, "alice/c1")));
    CHECK_FALSE(r.duplicate);
    CHECK(r.sender_seq == 1);
    std::vector<InboxEntry> t2 = FetchAll(*q, a2);
    REQUIRE(t2.size() == 1);
    CHECK(t2[0].message->body == "in t2");
    CHECK(FetchAll(*q, a1).size() == 2);
    CHECK(q->Ack(a1, "phone", 2).ok());
    CHECK(Must(q->Acked(a2, "phone")) == 0);
    CHECK(q->Ack(a2, "phone", 2).code() == Code::kBadRequest);
    CHECK(Must(q->Info(a1)).epoch != Must(q->Info(a2)).epoch);
  });
}

TEST_CASE("OfflineQueue: invalid appends are rejected and append nothing") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    const std::vector<AppendRequest> bad = {
        Req(nullptr, {U("a")}),
        Req(Msg(1, "a", "m"), {}),
        Req(Msg(1, "a", "m"), {U("a"), U("b")}, 2),
        Req(Msg(1, "a", "m"), {U("a"), U("b")}, -2),
        Req(Msg(1, "a", "m"), {U("a"), U("b"), U("a")}),  // recipients must be distinct
    };
    for (const AppendRequest& request : bad) {
      Result<AppendResult> r = q->Append(request);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == Code::kBadRequest);
    }
    CHECK(Must(q->Info(U("a"))).last_seq == 0);
    CHECK(Must(q->Info(U("b"))).last_seq == 0);
  });
}

TEST_CASE("OfflineQueue: AppendBatch keeps order and dedups within the batch") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    std::vector<AppendRequest> batch = {
        Req(Msg(1, "a", "one"), {U("a"), U("b")}, 0, "a/1"),
        Req(Msg(2, "a", "two"), {U("a"), U("c")}, 0, "a/2"),
        Req(Msg(3, "a", "one again"), {U("a"), U("b")}, 0, "a/1"),
        Req(nullptr, {U("a")}),
        Req(Msg(4, "a", "three"), {U("a"), U("b")}, 0),
    };
    std::vector<Result<AppendResult>> results = q->AppendBatch(batch);
    REQUIRE(results.size() == 5);
    REQUIRE(results[0].ok());
    CHECK(results[0]->seqs == std::vector<uint64_t>{1, 1});
    REQUIRE(results[1].ok());
    CHECK(results[1]->seqs == std::vector<uint64_t>{2, 1});
    REQUIRE(results[2].ok());
    CHECK(results[2]->duplicate);
    CHECK(results[2]->mid == 1);
    CHECK(results[2]->sender_seq == 1);
    CHECK_FALSE(results[3].ok());
    REQUIRE(results[4].ok());
    CHECK(results[4]->seqs == std::vector<uint64_t>{3, 2});
    std::vector<InboxEntry> b = FetchAll(*q, U("b"));
    REQUIRE(b.size() == 2);
    CHECK(b[0].message->body == "one");
    CHECK(b[1].message->body == "three");
  });
}

TEST_CASE("OfflineQueue: AppendBatchAsync answers batches in hand-over order") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    constexpr int kBatches = 200;
    std::mutex mu;
    std::vector<int> order;
    std::vector<std::vector<Result<AppendResult>>> answers(kBatches);
    for (int b = 0; b < kBatches; ++b) {
      auto batch = std::make_shared<std::vector<AppendRequest>>();
      if (b == 50) {
        batch->push_back(Req(nullptr, {U("a")}));  // nothing valid: still answered in turn
      } else {
        for (int i = 0; i < 3; ++i) {
          const uint64_t mid = static_cast<uint64_t>(b * 3 + i + 1);
          // The first request of a batch repeats the key of the second of the batch before.
          const std::string key = "k" + std::to_string(i == 0 && b > 0 ? mid - 2 : mid);
          batch->push_back(Req(Msg(mid, "a", std::to_string(mid)), {U("a"), U("b")}, 0, key));
        }
      }
      q->AppendBatchAsync(batch, [&, b, batch](std::vector<Result<AppendResult>> results) {
        REQUIRE(batch->size() == results.size());  // the batch is still alive
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(b);
        answers[b] = std::move(results);
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (order.size() == kBatches) break;
      }
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int b = 0; b < kBatches; ++b) REQUIRE(order[b] == b);
    CHECK(answers[50][0].status().code() == Code::kBadRequest);
    uint64_t last = 0;
    for (int b = 0; b < kBatches; ++b) {
      if (b == 50) continue;
      CAPTURE(b);
      for (int i = 0; i < 3; ++i) {
        Result<AppendResult>& r = answers[b][i];
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        // The first request of a batch repeats a key of the batch before: a duplicate, but
        // after the invalid batch, whose key was never recorded.
        const bool dup = i == 0 && b > 0 && b != 51;
        CHECK(r->duplicate == dup);
        if (dup) {
          CHECK(r->mid == static_cast<uint64_t>(b * 3 + i + 1 - 2));
          continue;
        }
        CHECK(r->sender_seq == last + 1);  // later batches, higher seqs: no reordering
        last = r->sender_seq;
      }
    }
    std::vector<InboxEntry> a = FetchAll(*q, U("a"));
    REQUIRE(a.size() == last);
    for (size_t i = 1; i < a.size(); ++i) CHECK(a[i - 1].message->mid < a[i].message->mid);
  });
}

TEST_CASE("OfflineQueue: concurrent appends keep inboxes gapless and consistently ordered") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    constexpr int kThreads = 8;
    constexpr int kAppendsPerThread = 300;
    constexpr int kUsers = 8;
    std::atomic<uint64_t> next_mid{1};
    std::atomic<bool> all_ok{true};
    std::mutex mu;
    // mid -> (recipient, seq) as Append reported them.
    std::map<uint64_t, std::vector<std::pair<int, uint64_t>>> reported;
    std::map<uint64_t, int> thread_of;  // mid -> the thread that appended it
    RunConcurrently(kThreads, [&](int t) {
      std::mt19937 rng(static_cast<unsigned>(t) + 1);
      for (int i = 0; i < kAppendsPerThread; ++i) {
        const int sender = static_cast<int>(rng() % kUsers);
        std::vector<int> ids = {sender};
        for (int u = 0; u < kUsers; ++u) {
          if (u != sender && (rng() % 2 == 0 || ids.size() == 1)) ids.push_back(u);
        }
        std::vector<UserKey> recipients;
        for (int u : ids) recipients.push_back(U("u" + std::to_string(u)));
        const uint64_t mid = next_mid++;
        Result<AppendResult> r = q->Append(Req(Msg(mid, "u", "m"), recipients, 0));
        if (!r.ok() || r->seqs.size() != ids.size()) {
          all_ok = false;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        for (size_t k = 0; k < ids.size(); ++k) reported[mid].push_back({ids[k], r->seqs[k]});
        thread_of[mid] = t;
      }
    });
    REQUIRE(all_ok.load());

    std::vector<std::vector<uint64_t>> mids(kUsers);  // each inbox's mids in seq order
    for (int u = 0; u < kUsers; ++u) {
      std::vector<InboxEntry> entries = FetchAll(*q, U("u" + std::to_string(u)));
      for (size_t i = 0; i < entries.size(); ++i) {
        REQUIRE(entries[i].seq == i + 1);  // 1..n without holes
        mids[u].push_back(entries[i].message->mid);
      }
    }
    size_t indexed = 0;
    for (const auto& [mid, placements] : reported) {
      for (const auto& [user, seq] : placements) {
        REQUIRE(seq >= 1);
        REQUIRE(seq <= mids[user].size());
        CHECK(mids[user][seq - 1] == mid);  // the seq Append reported holds that message
        ++indexed;
      }
    }
    size_t total = 0;
    for (const auto& inbox : mids) total += inbox.size();
    CHECK(total == indexed);

    if (!backend.one_order) {
      // Each thread's messages (its mids ascend) in call order in every inbox.
      for (const auto& inbox : mids) {
        std::map<int, uint64_t> last;
        for (uint64_t mid : inbox) {
          uint64_t& prev = last[thread_of[mid]];
          CHECK(mid > prev);
          prev = mid;
        }
      }
      return;
    }
    // Messages two users share appear in the same relative order in both inboxes.
    for (int a = 0; a < kUsers; ++a) {
      for (int b = a + 1; b < kUsers; ++b) {
        const std::set<uint64_t> in_a(mids[a].begin(), mids[a].end());
        const std::set<uint64_t> in_b(mids[b].begin(), mids[b].end());
        std::vector<uint64_t> shared_a, shared_b;
        std::copy_if(mids[a].begin(), mids[a].end(), std::back_inserter(shared_a),
                     [&](uint64_t mid) { return in_b.count(mid) > 0; });
        std::copy_if(mids[b].begin(), mids[b].end(), std::back_inserter(shared_b),
                     [&](uint64_t mid) { return in_a.count(mid) > 0; });
        CHECK(!shared_a.empty());
        CHECK(shared_a == shared_b);
      }
    }
  });
}

TEST_CASE("OfflineQueue: concurrent retries of one dedup key append it once") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    auto q = backend.open({});
    constexpr int kThreads = 8;
    constexpr int kKeys = 1000;
    std::atomic<uint64_t> next_mid{1};
    std::mutex mu;
    std::map<int, std::set<uint64_t>> mids_by_key;  // every mid Append returned for a key
    std::atomic<int> firsts{0};
    RunConcurrently(kThreads, [&](int) {
      for (int k = 0; k < kKeys; ++k) {
        Result<AppendResult> r = q->Append(
            Req(Msg(next_mid++, "a", "m"), {U("a"), U("b")}, 0, "a/" + std::to_string(k)));
        if (!r.ok()) continue;
        if (!r->duplicate) ++firsts;
        std::lock_guard<std::mutex> lock(mu);
        mids_by_key[k].insert(r->mid);
      }
    });
    CHECK(firsts.load() == kKeys);
    REQUIRE(mids_by_key.size() == static_cast<size_t>(kKeys));
    for (const auto& [key, mids] : mids_by_key) CHECK(mids.size() == 1);  // all saw one answer
    CHECK(FetchAll(*q, U("a")).size() == static_cast<size_t>(kKeys));
    CHECK(FetchAll(*q, U("b")).size() == static_cast<size_t>(kKeys));
  });
}

TEST_CASE("OfflineQueue: seqs and epochs and acks and entries survive a reopen") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    if (!backend.reopen) return;  // not a persistent backend
    auto q = backend.open({});
    for (uint64_t i = 1; i <= 3; ++i) Must(q->Append(Req(Msg(i, "a", "m"), {U("a")})));
    CHECK(q->Ack(U("a"), "phone", 2).ok());
    const std::string epoch = Must(q->Info(U("a"))).epoch;
    q.reset();
    q = backend.reopen({});
    REQUIRE(q.get() != nullptr);
    CHECK(Must(q->Info(U("a"))).epoch == epoch);
    std::vector<InboxEntry> entries = FetchAll(*q, U("a"));
    CHECK(Seqs(entries) == std::vector<uint64_t>{1, 2, 3});
    REQUIRE(entries.size() == 3);
    CHECK(entries[2].message->mid == 3);
    CHECK(entries[2].message->body == "m");
    CHECK(Must(q->Acked(U("a"), "phone")) == 2);
    CHECK(Must(q->Append(Req(Msg(4, "a", "m"), {U("a")}))).sender_seq == 4);
  });
}

TEST_CASE("OfflineQueue: dedup keys and an emptied inbox's last_seq survive a reopen") {
  ForEachBackend([](const OfflineQueueBackend& backend) {
    if (!backend.reopen) return;  // not a persistent backend
    OfflineQueueOptions options;
    options.retention_ms = 1000;
    auto q = backend.open(options);
    AppendResult first = Must(q->Append(Req(Msg(1, "a", "m"), {U("a"), U("b")}, 0, "a/c1")));
    for (uint64_t i = 2; i <= 4; ++i) Must(q->Append(Req(Msg(i, "x", "m"), {U("b")}, -1)));
    CHECK(Must(q->Expire(kT0 + 5000)) == 5);  // both inboxes emptied by age
    const std::string epoch = Must(q->Info(U("b"))).epoch;
    q.reset();
    q = backend.reopen(options);
    REQUIRE(q.get() != nullptr);
    AppendResult again = Must(q->Append(Req(Msg(9, "a", "retry"), {U("a"), U("b")}, 0, "a/c1")));
    CHECK(again.duplicate);
    CHECK(again.mid == first.mid);
    CHECK(again.sender_seq == 1);
    InboxInfo info = Must(q->Info(U("b")));
    CHECK(info.epoch == epoch);
    CHECK(info.first_seq == 0);
    CHECK(info.last_seq == 4);
    FetchResult r = MustFetch(*q, U("b"), 0);
    CHECK(r.entries.empty());
    CHECK(r.gap);
    CHECK(Must(q->Append(Req(Msg(10, "x", "m"), {U("b")}, -1))).seqs == std::vector<uint64_t>{5});
  });
}

}  // namespace
}  // namespace im
