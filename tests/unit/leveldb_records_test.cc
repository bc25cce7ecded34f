// What one append writes to the LevelDB inbox database, counted by the queue's write stats
// (store/leveldb/write_stats.h), so that a layout change that writes more per message fails here:
// the message once, one entry per recipient inbox, the dedup record with its time index, and the
// batch's write count. No inbox header per append.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "store/leveldb/write_stats.h"
#include "support/temp_dir.h"

namespace im {
namespace {

struct Written {
  uint64_t records = 0;
  uint64_t bytes = 0;
};

// Opens a queue in `dir`, creates the inboxes of u0..u(users-1), then appends `messages` messages
// from u0 to the first `recipients` users, one write each; what those appends wrote per message.
Written PerMessage(const std::string& dir, size_t users, size_t recipients, size_t messages,
                   bool dedup) {
  auto opened = OpenLevelDbOfflineQueue(dir);
  REQUIRE(opened.ok());
  OfflineQueue& queue = **opened;
  std::vector<UserKey> keys;
  for (size_t i = 0; i < users; ++i) {
    keys.push_back({"default", "u" + std::to_string(i)});
    REQUIRE(queue.Info(keys.back()).ok());  // creates the inbox: one header, once
  }
  internal::LevelDbWriteStats before;
  REQUIRE(internal::GetLevelDbWriteStats(queue, &before));
  for (size_t i = 0; i < messages; ++i) {
    auto message = std::make_shared<Message>();
    message->mid = 1000 + i;
    message->tenant = "default";
    message->from = "u0";
    message->to = recipients == 2 ? "u1" : "";
    message->group = recipients == 2 ? "" : "g";
    message->body = std::string(100, 'x');
    message->ts = 1'700'000'000'000 + static_cast<TimestampMs>(i);
    AppendRequest request;
    request.message = message;
    request.recipients.assign(keys.begin(), keys.begin() + static_cast<long>(recipients));
    request.sender_index = 0;
    if (dedup) request.dedup_key = "u0/c" + std::to_string(i);
    auto result = queue.Append(request);
    REQUIRE(result.ok());
    REQUIRE(result->seqs.back() == i + 1);
  }
  internal::LevelDbWriteStats after;
  REQUIRE(internal::GetLevelDbWriteStats(queue, &after));
  CHECK(after.batches - before.batches == messages);
  return {(after.records - before.records) / messages, (after.bytes - before.bytes) / messages};
}

TEST_CASE("leveldb records: a 1:1 message writes six records, four without a dedup key") {
  test::TempDir dir;
  // The message, two inbox entries, the dedup record and its time index, the write count.
  const Written with_dedup = PerMessage(dir.path() + "/a", 2, 2, 50, true);
  CHECK(with_dedup.records == 6);
  // 100-byte body: 9 keys and values, the batch header and each record's tag and lengths.
  CHECK(with_dedup.bytes < 380);
  CHECK(PerMessage(dir.path() + "/b", 2, 2, 50, false).records == 4);
}

TEST_CASE("leveldb records: a group message writes one record per member and four more") {
  test::TempDir dir;
  CHECK(PerMessage(dir.path() + "/ten", 10, 10, 20, true).records == 14);
  const Written thousand = PerMessage(dir.path() + "/thousand", 1000, 1000, 3, true);
  CHECK(thousand.records == 1004);
  CHECK(thousand.bytes < 46 * 1000);  // about 45 bytes per member entry
}

TEST_CASE("leveldb records: write stats are for LevelDB queues only") {
  internal::LevelDbWriteStats stats;
  CHECK_FALSE(internal::GetLevelDbWriteStats(*NewMemoryOfflineQueue(), &stats));
}

}  // namespace
}  // namespace im
