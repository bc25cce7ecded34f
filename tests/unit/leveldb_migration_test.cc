// An inbox database written by the first record layout (format 1: the committed fixture under
// tests/data/leveldb_inbox_v1, made by its make_fixture.cc) opens with the current code: it is
// migrated in place and answers every fetch, info, ack and dedup question as it did, and new
// appends continue its seqs. A migration cut short (some messages moved, no format record) is
// finished by the next open; a format newer than the code is refused.

#include <doctest/doctest.h>
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "store/leveldb/keys.h"
#include "support/temp_dir.h"

namespace im {
namespace {

namespace fs = std::filesystem;
namespace keys = internal::leveldb_queue;

constexpr TimestampMs kT0 = 1'700'000'000'000;  // the fixture's clock

class FixedClock final : public Clock {
 public:
  TimestampMs NowMs() const override { return kT0 + 3600 * 1000; }  // within the dedup window
};

const fs::path kFixture = fs::path(IM_TEST_DATA_DIR) / "leveldb_inbox_v1";

struct ExpectedInbox {
  UserKey user;
  std::string epoch;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool gap = false;
  std::vector<std::string> entries;  // "SEQ MID TS FROM|TO|GROUP|TYPE|BODY|EXTRA"
};
struct ExpectedAck {
  UserKey user;
  std::string device;
  uint64_t seq = 0;
};
struct ExpectedDedup {
  std::string tenant;
  std::string key;
  uint64_t mid = 0;
  TimestampMs ts = 0;
  uint64_t sender_seq = 0;
};
struct Expected {
  std::vector<ExpectedInbox> inboxes;
  std::vector<ExpectedAck> acks;
  std::vector<ExpectedDedup> dedups;
};

Expected ReadExpected() {
  std::ifstream in(kFixture / "expected.txt");
  REQUIRE(in.good());
  Expected expected;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "inbox") {
      ExpectedInbox inbox;
      int gap = 0;
      fields >> inbox.user.tenant >> inbox.user.user >> inbox.epoch >> inbox.first_seq >>
          inbox.last_seq >> gap;
      inbox.gap = gap != 0;
      expected.inboxes.push_back(inbox);
    } else if (kind == "entry") {
      REQUIRE_FALSE(expected.inboxes.empty());
      expected.inboxes.back().entries.push_back(line.substr(6));
    } else if (kind == "ack") {
      ExpectedAck ack;
      fields >> ack.user.tenant >> ack.user.user >> ack.device >> ack.seq;
      expected.acks.push_back(ack);
    } else if (kind == "dedup") {
      ExpectedDedup dedup;
      fields >> dedup.tenant >> dedup.key >> dedup.mid >> dedup.ts >> dedup.sender_seq;
      expected.dedups.push_back(dedup);
    }
    REQUIRE_FALSE(fields.fail());
  }
  REQUIRE(expected.inboxes.size() == 8);
  REQUIRE(expected.dedups.size() == 20);
  return expected;
}

std::string EntryLine(const InboxEntry& e) {
  const Message& m = *e.message;
  return std::to_string(e.seq) + " " + std::to_string(m.mid) + " " + std::to_string(m.ts) + " " +
         m.from + "|" + m.to + "|" + m.group + "|" + m.type + "|" + m.body + "|" + m.extra;
}

// A copy of the fixture database in `dir`.
std::string CopyFixture(const std::string& dir) {
  const std::string inbox = dir + "/inbox";
  fs::copy(kFixture / "inbox", inbox, fs::copy_options::recursive);
  return inbox;
}

// Keys per record type, read with LevelDB itself. Header values count under 'H' + their leading
// version byte (format 1 wrote version 1; format 2 writes 2, which older readers refuse).
std::map<char, int> CountRecords(const std::string& dir) {
  leveldb::DB* raw = nullptr;
  REQUIRE(leveldb::DB::Open(leveldb::Options(), dir, &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  std::map<char, int> counts;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++counts[it->key()[0]];
    if (it->key()[0] == 'h') ++counts[static_cast<char>('H' + it->value()[0])];
  }
  REQUIRE(it->status().ok());
  return counts;
}

OfflineQueueOptions FixtureOptions(Clock* clock) {
  OfflineQueueOptions options;
  options.max_inbox = 6;
  options.clock = clock;
  return options;
}

// Everything the fixture's expected.txt says, asked of `queue`.
void CheckAnswers(OfflineQueue& queue, const Expected& expected) {
  for (const ExpectedInbox& inbox : expected.inboxes) {
    CAPTURE(inbox.user.tenant);
    CAPTURE(inbox.user.user);
    auto info = queue.Info(inbox.user);
    REQUIRE(info.ok());
    CHECK(info->epoch == inbox.epoch);
    CHECK(info->first_seq == inbox.first_seq);
    CHECK(info->last_seq == inbox.last_seq);
    auto page = queue.Fetch(inbox.user, 0, 500);
    REQUIRE(page.ok());
    CHECK(page->epoch == inbox.epoch);
    CHECK(page->gap == inbox.gap);
    CHECK_FALSE(page->more);
    std::vector<std::string> entries;
    for (const InboxEntry& e : page->entries) entries.push_back(EntryLine(e));
    CHECK(entries == inbox.entries);
  }
  for (const ExpectedAck& ack : expected.acks) {
    CAPTURE(ack.user.user);
    CAPTURE(ack.device);
    auto acked = queue.Acked(ack.user, ack.device);
    REQUIRE(acked.ok());
    CHECK(*acked == ack.seq);
  }
  uint64_t mid = 90000;
  for (const ExpectedDedup& dedup : expected.dedups) {
    CAPTURE(dedup.key);
    auto message = std::make_shared<Message>();
    message->mid = ++mid;
    message->tenant = dedup.tenant;
    message->from = "alice";
    message->body = "a retry";
    message->ts = kT0 + 7200 * 1000;
    AppendRequest request;
    request.message = message;
    request.recipients = {{dedup.tenant, "alice"}};
    request.sender_index = 0;
    request.dedup_key = dedup.key;
    auto result = queue.Append(request);
    REQUIRE(result.ok());
    CHECK(result->duplicate);
    CHECK(result->mid == dedup.mid);
    CHECK(result->ts == dedup.ts);
    CHECK(result->sender_seq == dedup.sender_seq);
  }
}

// One new message into every inbox of the fixture; each gets last_seq + 1.
void CheckSeqsContinue(OfflineQueue& queue, const Expected& expected) {
  uint64_t mid = 80000;
  for (const ExpectedInbox& inbox : expected.inboxes) {
    CAPTURE(inbox.user.user);
    auto message = std::make_shared<Message>();
    message->mid = ++mid;
    message->tenant = inbox.user.tenant;
    message->body = "after the migration";
    message->ts = kT0 + 3600 * 1000;
    AppendRequest request;
    request.message = message;
    request.recipients = {inbox.user};
    auto result = queue.Append(request);
    REQUIRE(result.ok());
    CHECK(result->seqs == std::vector<uint64_t>{inbox.last_seq + 1});
  }
}

TEST_CASE("leveldb migration: a format 1 database opens with every answer it gave") {
  test::TempDir dir;
  const std::string inbox = CopyFixture(dir.path());
  const Expected expected = ReadExpected();
  std::map<char, int> before = CountRecords(inbox);
  // The fixture is format 1: message and time index records, no format record.
  CHECK(before['m'] == before['t']);
  CHECK(before['m'] > 10);
  CHECK(before['!'] == 1);  // the write count alone
  CHECK(before['H' + 1] == before['h']);
  FixedClock clock;
  {
    auto queue = OpenLevelDbOfflineQueue(inbox, FixtureOptions(&clock));
    REQUIRE_MESSAGE(queue.ok(), queue.status().ToString());
    CheckAnswers(**queue, expected);
  }
  std::map<char, int> after = CountRecords(inbox);
  CHECK(after['m'] == 0);
  CHECK(after['t'] == 0);
  CHECK(after['p'] == before['m']);  // every message moved, none lost
  CHECK(after['!'] == 2);            // the write count and the format
  CHECK(after['h'] == before['h']);
  CHECK(after['H' + 2] == after['h']);  // every header rewritten: an older version refuses them
  CHECK(after['i'] == before['i']);
  {
    auto queue = OpenLevelDbOfflineQueue(inbox, FixtureOptions(&clock));
    REQUIRE(queue.ok());
    CheckAnswers(**queue, expected);
    CheckSeqsContinue(**queue, expected);
  }
  // The new messages survive a reopen, above the old ones.
  auto queue = OpenLevelDbOfflineQueue(inbox, FixtureOptions(&clock));
  REQUIRE(queue.ok());
  for (const ExpectedInbox& box : expected.inboxes) {
    auto info = (*queue)->Info(box.user);
    REQUIRE(info.ok());
    CHECK(info->epoch == box.epoch);
    CHECK(info->last_seq == box.last_seq + 1);
    auto page = (*queue)->Fetch(box.user, box.last_seq, 500);
    REQUIRE(page.ok());
    REQUIRE(page->entries.size() == 1);
    CHECK(page->entries[0].message->body == "after the migration");
  }
}

TEST_CASE("leveldb migration: a migration cut short is finished by the next open") {
  test::TempDir dir;
  const std::string inbox = CopyFixture(dir.path());
  const Expected expected = ReadExpected();
  // What a crash between two migration batches leaves: some messages moved to their new key
  // with their time index record gone, the rest as they were, no format record.
  {
    leveldb::DB* raw = nullptr;
    REQUIRE(leveldb::DB::Open(leveldb::Options(), inbox, &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
    leveldb::WriteBatch batch;
    int moved = 0;
    for (it->Seek("m"); it->Valid() && it->key()[0] == 'm' && moved < 5; it->Next(), ++moved) {
      std::string_view tenant;
      uint64_t mid = 0;
      REQUIRE(keys::ParseOldMessageKey({it->key().data(), it->key().size()}, &tenant, &mid));
      auto message = keys::DecodeOldMessage({it->value().data(), it->value().size()}, tenant, mid);
      REQUIRE(message != nullptr);
      batch.Put(keys::MessageKey(tenant, message->ts, mid), keys::EncodeMessage(*message));
      batch.Delete(keys::OldMessageTimeKey(tenant, message->ts, mid));
      batch.Delete(it->key());
    }
    REQUIRE(moved == 5);
    it.reset();
    REQUIRE(db->Write(leveldb::WriteOptions(), &batch).ok());
  }
  std::map<char, int> partial = CountRecords(inbox);
  CHECK(partial['p'] == 5);
  CHECK(partial['m'] > 0);
  FixedClock clock;
  {
    auto queue = OpenLevelDbOfflineQueue(inbox, FixtureOptions(&clock));
    REQUIRE(queue.ok());
    CheckAnswers(**queue, expected);
    CheckSeqsContinue(**queue, expected);
  }
  std::map<char, int> after = CountRecords(inbox);
  CHECK(after['m'] == 0);
  CHECK(after['t'] == 0);
  CHECK(after['p'] == partial['p'] + partial['m'] + 8);  // and the 8 new messages
}

TEST_CASE("leveldb migration: a newer record format is refused and left as it is") {
  test::TempDir dir;
  const std::string inbox = dir.path() + "/inbox";
  REQUIRE(OpenLevelDbOfflineQueue(inbox).ok());
  {
    leveldb::DB* raw = nullptr;
    REQUIRE(leveldb::DB::Open(leveldb::Options(), inbox, &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    REQUIRE(db->Put(leveldb::WriteOptions(), keys::FormatKey(), keys::EncodeFixed64(3)).ok());
  }
  auto queue = OpenLevelDbOfflineQueue(inbox);
  REQUIRE_FALSE(queue.ok());
  const std::string message(queue.status().message());
  CHECK(message.find(inbox) != std::string::npos);
  CHECK(message.find("record format 3, newer than this version reads (2)") != std::string::npos);
}

}  // namespace
}  // namespace im
