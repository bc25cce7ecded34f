// How the LevelDB OfflineQueue keeps an inbox's seqs without rewriting its header per append: the
// header is written at creation and when the inbox is emptied; last_seq is otherwise read back
// from the highest entry after a restart. A seq is never handed out twice.

#include <doctest/doctest.h>
#include <leveldb/db.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "store/leveldb/keys.h"
#include "support/temp_dir.h"

namespace im {
namespace {

namespace keys = internal::leveldb_queue;

const UserKey kBob{"default", "bob"};

Result<AppendResult> AppendTo(OfflineQueue& queue, uint64_t mid, const UserKey& user = kBob) {
  auto message = std::make_shared<Message>();
  message->mid = mid;
  message->tenant = user.tenant;
  message->body = "m" + std::to_string(mid);
  message->ts = 1'700'000'000'000 + static_cast<TimestampMs>(mid);
  AppendRequest request;
  request.message = message;
  request.recipients = {user};
  return queue.Append(request);
}

// Runs `change` on the raw database in `dir` (no queue may have it open).
template <typename F>
void WithRawDb(const std::string& dir, F change) {
  leveldb::DB* raw = nullptr;
  REQUIRE(leveldb::DB::Open(leveldb::Options(), dir, &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  change(*db);
}

TEST_CASE("leveldb inbox state: appends leave the header alone, a reopen reads last_seq back") {
  test::TempDir dir;
  std::string epoch;
  {
    auto queue = OpenLevelDbOfflineQueue(dir.path());
    REQUIRE(queue.ok());
    for (uint64_t mid = 1; mid <= 10; ++mid) REQUIRE(AppendTo(**queue, mid)->seqs[0] == mid);
    epoch = (*queue)->Info(kBob)->epoch;
  }
  WithRawDb(dir.path(), [](leveldb::DB& db) {
    std::string value;
    REQUIRE(db.Get(leveldb::ReadOptions(), keys::HeaderKey(kBob), &value).ok());
    keys::InboxHeader header;
    REQUIRE(keys::DecodeHeader(value, &header));
    CHECK(header.last_seq == 1);  // as written by the first append, which created the inbox
  });
  auto queue = OpenLevelDbOfflineQueue(dir.path());
  REQUIRE(queue.ok());
  auto info = (*queue)->Info(kBob);
  REQUIRE(info.ok());
  CHECK(info->epoch == epoch);
  CHECK(info->first_seq == 1);
  CHECK(info->last_seq == 10);
  CHECK(AppendTo(**queue, 11)->seqs[0] == 11);
}

TEST_CASE("leveldb inbox state: an inbox that max_inbox keeps empty keeps its last_seq") {
  test::TempDir dir;
  OfflineQueueOptions options;
  options.max_inbox = 0;  // every entry goes in the batch that adds it
  {
    auto queue = OpenLevelDbOfflineQueue(dir.path(), options);
    REQUIRE(queue.ok());
    for (uint64_t mid = 1; mid <= 3; ++mid) REQUIRE(AppendTo(**queue, mid)->seqs[0] == mid);
    auto page = (*queue)->Fetch(kBob, 0, 10);
    REQUIRE(page.ok());
    CHECK(page->entries.empty());
    CHECK(page->last_seq == 3);
  }
  auto queue = OpenLevelDbOfflineQueue(dir.path(), options);
  REQUIRE(queue.ok());
  CHECK((*queue)->Info(kBob)->last_seq == 3);
  CHECK(AppendTo(**queue, 4)->seqs[0] == 4);
}

TEST_CASE("leveldb inbox state: entries without a header get one above them, never below") {
  test::TempDir dir;
  std::string epoch;
  {
    auto queue = OpenLevelDbOfflineQueue(dir.path());
    REQUIRE(queue.ok());
    for (uint64_t mid = 1; mid <= 5; ++mid) REQUIRE(AppendTo(**queue, mid).ok());
    epoch = (*queue)->Info(kBob)->epoch;
  }
  // What damage can leave: the header gone, the entries there.
  WithRawDb(dir.path(), [](leveldb::DB& db) {
    REQUIRE(db.Delete(leveldb::WriteOptions(), keys::HeaderKey(kBob)).ok());
  });
  auto queue = OpenLevelDbOfflineQueue(dir.path());
  REQUIRE(queue.ok());
  auto info = (*queue)->Info(kBob);
  REQUIRE(info.ok());
  CHECK(info->epoch != epoch);  // a new inbox as far as clients know: they resync
  CHECK(info->last_seq == 5);
  CHECK(AppendTo(**queue, 6)->seqs[0] == 6);
}

// The first touch of an inbox creates its epoch from the read that found no header, unless a
// write was published meanwhile (then it reads again). Threads racing to create the same inboxes,
// with appends creating them too, must all see one epoch per inbox, and no seq twice.
TEST_CASE("leveldb inbox state: racing first touches and appends agree on one epoch per inbox") {
  test::TempDir dir;
  auto queue = OpenLevelDbOfflineQueue(dir.path());
  REQUIRE(queue.ok());
  constexpr int kUsers = 40;
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> epochs(kThreads, std::vector<std::string>(kUsers));
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int u = 0; u < kUsers; ++u) {
        const UserKey user{"default", "racer" + std::to_string(u)};
        if (t % 2 == 0) {
          auto info = (*queue)->Info(user);
          if (info.ok()) epochs[t][u] = info->epoch;
        } else {
          auto appended = AppendTo(**queue, static_cast<uint64_t>(t * 1000 + u + 1), user);
          if (appended.ok()) seqs[t].push_back(appended->seqs[0]);
          auto info = (*queue)->Info(user);
          if (info.ok()) epochs[t][u] = info->epoch;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int u = 0; u < kUsers; ++u) {
    const UserKey user{"default", "racer" + std::to_string(u)};
    auto info = (*queue)->Info(user);
    REQUIRE(info.ok());
    CHECK(!info->epoch.empty());
    for (int t = 0; t < kThreads; ++t) CHECK(epochs[t][u] == info->epoch);
    CHECK(info->last_seq == kThreads / 2);  // one append per appending thread, seqs 1 and 2
  }
  for (int t = 1; t < kThreads; t += 2) CHECK(seqs[t].size() == kUsers);
}

}  // namespace
}  // namespace im
