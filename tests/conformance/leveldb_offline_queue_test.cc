// LevelDB-only OfflineQueue cases: what the shared conformance suite cannot ask of every backend
// (the directory lock, a wiped directory, the key layout, sweeps larger than one write batch).

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "support/temp_dir.h"

namespace im {
namespace {

constexpr TimestampMs kT0 = 1'700'000'000'000;

using im::test::TempDir;

template <typename T>
T Must(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

std::shared_ptr<OfflineQueue> Open(const std::string& dir, OfflineQueueOptions options = {},
                                   LevelDbOptions db = {}) {
  return Must(OpenLevelDbOfflineQueue(dir, options, db));
}

UserKey U(const std::string& user, const std::string& tenant = "default") {
  return UserKey{tenant, user};
}

AppendRequest Req(uint64_t mid, std::vector<UserKey> recipients, TimestampMs ts = kT0,
                  std::string dedup_key = {}, std::string body = "m") {
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = recipients.empty() ? "default" : recipients[0].tenant;
  m->from = "sender";
  m->body = std::move(body);
  m->ts = ts;
  AppendRequest r;
  r.message = std::move(m);
  r.recipients = std::move(recipients);
  r.sender_index = -1;
  r.dedup_key = std::move(dedup_key);
  return r;
}

TEST_CASE("LevelDbOfflineQueue: a second open of a live directory fails with 503") {
  TempDir dir;
  auto q = Open(dir.path());
  Result<std::shared_ptr<OfflineQueue>> second = OpenLevelDbOfflineQueue(dir.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message().find("LOCK") != std::string_view::npos);
  q.reset();  // closing releases the lock
  CHECK(OpenLevelDbOfflineQueue(dir.path()).ok());
}

TEST_CASE("LevelDbOfflineQueue: open creates missing parents unless told not to") {
  TempDir dir;
  const std::string nested = dir.path() + "/a/b/inbox";
  LevelDbOptions no_create;
  no_create.create_if_missing = false;
  CHECK_FALSE(OpenLevelDbOfflineQueue(nested, {}, no_create).ok());
  auto q = Open(nested);
  CHECK(Must(q->Append(Req(1, {U("a")}))).seqs == std::vector<uint64_t>{1});
}

TEST_CASE("LevelDbOfflineQueue: a wiped directory starts new epochs") {
  TempDir dir;
  auto q = Open(dir.path());
  Must(q->Append(Req(1, {U("a")})));
  const std::string epoch = Must(q->Info(U("a"))).epoch;
  CHECK(epoch.size() == 16);
  q.reset();
  std::filesystem::remove_all(dir.path());
  q = Open(dir.path());
  InboxInfo info = Must(q->Info(U("a")));
  CHECK(info.epoch != epoch);
  CHECK(info.last_seq == 0);
}

TEST_CASE("LevelDbOfflineQueue: keys of other tenants and users never collide") {
  TempDir dir;
  auto q = Open(dir.path());
  // Concatenated, ("a", "bc") and ("ab", "c") would be the same bytes.
  Must(q->Append(Req(1, {U("bc", "a")}, kT0, "k", "tenant a")));
  Must(q->Append(Req(2, {U("c", "ab")}, kT0, "k", "tenant ab")));
  Must(q->Append(Req(3, {U("ab", "a")}, kT0, "bc", "tenant a, user ab")));
  // A user whose id extends another's must not show up in its inbox scan.
  Must(q->Append(Req(4, {U("bcd", "a")})));
  FetchResult bc = Must(q->Fetch(U("bc", "a"), 0, 500));
  REQUIRE(bc.entries.size() == 1);
  CHECK(bc.entries[0].message->body == "tenant a");
  CHECK(bc.entries[0].message->tenant == "a");
  FetchResult c = Must(q->Fetch(U("c", "ab"), 0, 500));
  REQUIRE(c.entries.size() == 1);
  CHECK(c.entries[0].message->body == "tenant ab");
  CHECK(Must(q->Fetch(U("ab", "a"), 0, 500)).entries.size() == 1);
  CHECK(Must(q->Info(U("b", "a"))).last_seq == 0);
  CHECK(q->Ack(U("bc", "a"), "phone", 1).ok());
  CHECK(Must(q->Acked(U("c", "ab"), "phone")) == 0);
}

TEST_CASE("LevelDbOfflineQueue: a swept message leaves a gap where an inbox still indexes it") {
  TempDir dir;
  OfflineQueueOptions options;
  options.retention_ms = 1000;
  auto q = Open(dir.path(), options);
  // A young entry in front keeps the old one behind it in the inbox, but not its message.
  Must(q->Append(Req(1, {U("bob")}, kT0 + 10000)));
  Must(q->Append(Req(2, {U("bob")}, kT0)));
  Must(q->Append(Req(3, {U("bob")}, kT0 + 10000)));
  CHECK(Must(q->Expire(kT0 + 1500)) == 0);
  FetchResult r = Must(q->Fetch(U("bob"), 0, 500));
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[0].seq == 1);
  CHECK(r.entries[1].seq == 3);
  CHECK(r.gap);
  CHECK(r.first_seq == 1);
  CHECK_FALSE(Must(q->Fetch(U("bob"), 2, 500)).gap);
}

TEST_CASE("LevelDbOfflineQueue: sweeps larger than one write batch") {
  TempDir dir;
  OfflineQueueOptions options;
  options.retention_ms = 1000;
  options.max_inbox = 100000;
  constexpr uint64_t kOld = 25000;  // more than two sweep batches in one inbox
  {
    auto q = Open(dir.path(), options);
    std::vector<AppendRequest> batch;
    for (uint64_t i = 1; i <= kOld + 10; ++i) {
      const TimestampMs ts = i <= kOld ? kT0 : kT0 + 100000;
      batch.push_back(
          Req(i, {U("bob"), U("u" + std::to_string(i % 3000))}, ts, "k" + std::to_string(i)));
      if (batch.size() == 500 || i == kOld + 10) {
        for (const auto& r : q->AppendBatch(batch)) REQUIRE(r.ok());
        batch.clear();
      }
    }
    CHECK(Must(q->Expire(kT0 + 5000)) == 2 * kOld);  // bob's and the u* inboxes' old entries
    FetchResult r = Must(q->Fetch(U("bob"), 0, 500));
    CHECK(r.entries.size() == 10);
    CHECK(r.first_seq == kOld + 1);
    CHECK(r.gap);
    CHECK(Must(q->Expire(kT0 + 5000)) == 0);
  }
  auto q = Open(dir.path(), options);
  InboxInfo info = Must(q->Info(U("bob")));
  CHECK(info.first_seq == kOld + 1);
  CHECK(info.last_seq == kOld + 10);
  // Every message record is still readable through the entries that remain.
  for (const InboxEntry& e : Must(q->Fetch(U("bob"), 0, 500)).entries) {
    CHECK(e.message->ts == kT0 + 100000);
  }
}

TEST_CASE("LevelDbOfflineQueue: fetches see consistent pages while appends run") {
  TempDir dir;
  auto q = Open(dir.path());
  constexpr int kReaders = 2;
  constexpr uint64_t kAppends = 3000, kCheckpoint = 500;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> bad{false};
  // Reads that saw the writer part-way (0 < last_seq < kAppends): proof that they overlapped.
  std::atomic<int> midway_reads{0};
  std::thread writer([&] {
    while (ready.load() < kReaders) std::this_thread::yield();  // start with the readers
    for (uint64_t i = 1; i <= kAppends; ++i) {
      if (!q->Append(Req(i, {U("bob"), U("carol")})).ok()) bad = true;
      if (i % kCheckpoint != 0 || i == kAppends) continue;
      // At each checkpoint, let every reader see this state at least once (10 s at most).
      const int target = midway_reads.load() + kReaders;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (midway_reads.load() < target && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&] {
      ++ready;
      while (!stop.load()) {
        Result<FetchResult> r = q->Fetch(U("bob"), 0, 500);
        if (!r.ok() || r->gap) bad = true;
        if (!r.ok()) continue;
        if (r->last_seq > 0 && r->last_seq < kAppends) ++midway_reads;
        for (size_t i = 0; i < r->entries.size(); ++i) {
          if (r->entries[i].seq != i + 1 || r->entries[i].message->mid != i + 1) bad = true;
        }
        if (r->entries.size() < 500 && r->entries.size() != r->last_seq) bad = true;
      }
    });
  }
  writer.join();
  for (std::thread& t : readers) t.join();
  CHECK_FALSE(bad.load());
  CHECK(midway_reads.load() >= static_cast<int>(kAppends / kCheckpoint - 1) * kReaders);
  CHECK(Must(q->Info(U("carol"))).last_seq == kAppends);
}

TEST_CASE("LevelDbOfflineQueue: durable through compactions with small buffers and sync") {
  TempDir dir;
  LevelDbOptions db;
  db.sync_writes = true;
  db.block_cache_bytes = 64 << 10;
  db.write_buffer_bytes = 64 << 10;  // forces many memtable flushes
  const std::string body(200, 'x');
  {
    auto q = Open(dir.path(), {}, db);
    std::vector<AppendRequest> batch;
    for (uint64_t i = 1; i <= 3000; ++i) {
      batch.push_back(Req(i, {U("a"), U("b")}, kT0, {}, body));
      if (batch.size() == 100) {
        for (const auto& r : q->AppendBatch(batch)) REQUIRE(r.ok());
        batch.clear();
      }
    }
  }
  auto q = Open(dir.path(), {}, db);
  uint64_t after = 0;
  size_t seen = 0;
  for (;;) {
    FetchResult page = Must(q->Fetch(U("b"), after, 500));
    for (const InboxEntry& e : page.entries) {
      CHECK(e.seq == ++seen);
      CHECK(e.message->body == body);
    }
    if (!page.more) break;
    after = page.entries.back().seq;
  }
  CHECK(seen == 3000);
}

TEST_CASE("LevelDbOfflineQueue: seqs continue for users whose cached header was evicted") {
  TempDir dir;
  auto q = Open(dir.path());
  constexpr int kUsers = 70000;  // more than the header cache holds
  std::vector<AppendRequest> batch;
  for (int i = 0; i < kUsers; ++i) {
    batch.push_back(Req(static_cast<uint64_t>(i) + 1, {U("u" + std::to_string(i))}));
    if (batch.size() == 1000) {
      for (const auto& r : q->AppendBatch(batch)) REQUIRE(r.ok());
      batch.clear();
    }
  }
  CHECK(Must(q->Append(Req(kUsers + 1, {U("u0")}))).seqs == std::vector<uint64_t>{2});
  CHECK(Must(q->Fetch(U("u1"), 0, 500)).entries.size() == 1);
}

}  // namespace
}  // namespace im
