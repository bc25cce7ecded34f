#include "store/leveldb/migration.h"

#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <memory>
#include <string_view>

#include "ops/log.h"
#include "store/leveldb/db_util.h"
#include "store/leveldb/keys.h"

namespace im::internal::leveldb_queue {
namespace {

// Messages moved per write batch (three keys each): bounds the memory of one batch.
constexpr size_t kBatchMessages = 2000;

Status Write(leveldb::DB* db, leveldb::WriteBatch* batch, bool sync) {
  leveldb::WriteOptions options;
  options.sync = sync;
  leveldb::Status status = db->Write(options, batch);
  batch->Clear();
  return status.ok() ? Status::OK() : FromLevelDb(status);
}

// Deletes every key of `type` (format 1 records that nothing points to any more).
Status DeleteAll(leveldb::DB* db, RecordType type) {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ScanRead()));
  leveldb::WriteBatch batch;
  size_t keys = 0;
  for (it->Seek(std::string(1, type)); it->Valid() && it->key()[0] == type; it->Next()) {
    batch.Delete(it->key());
    if (++keys % (3 * kBatchMessages) == 0) {
      if (Status s = Write(db, &batch, false); !s.ok()) return s;
    }
  }
  if (!it->status().ok()) return FromLevelDb(it->status());
  return Write(db, &batch, false);
}

// Every header again, in the current encoding: an older version then refuses the database
// (keys.cc, kHeaderVersion) instead of reading headers that are no longer rewritten per append.
Status RewriteHeaders(leveldb::DB* db) {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ScanRead()));
  leveldb::WriteBatch batch;
  size_t keys = 0;
  for (it->Seek(std::string(1, kHeaderRecord)); it->Valid() && it->key()[0] == kHeaderRecord;
       it->Next()) {
    InboxHeader header;
    if (!DecodeHeader(View(it->value()), &header)) return Corrupt("inbox header");
    batch.Put(it->key(), EncodeHeader(header));
    if (++keys % (3 * kBatchMessages) == 0) {
      if (Status s = Write(db, &batch, false); !s.ok()) return s;
    }
  }
  if (!it->status().ok()) return FromLevelDb(it->status());
  return Write(db, &batch, false);
}

// Format 1 -> 2: every m record moves to its p key, its t record goes with it, in one batch; then
// every header is rewritten. The scans read an iterator's snapshot, so the batches written
// meanwhile do not disturb them.
Status MigrateFrom1(leveldb::DB* db, size_t* migrated) {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ScanRead()));
  leveldb::WriteBatch batch;
  size_t in_batch = 0;
  for (it->Seek(std::string(1, kOldMessageRecord));
       it->Valid() && it->key()[0] == kOldMessageRecord; it->Next()) {
    std::string_view tenant;
    uint64_t mid = 0;
    if (!ParseOldMessageKey(View(it->key()), &tenant, &mid)) return Corrupt("message key");
    std::shared_ptr<Message> message = DecodeOldMessage(View(it->value()), tenant, mid);
    if (message == nullptr) return Corrupt("message");
    batch.Put(MessageKey(tenant, message->ts, mid), EncodeMessage(*message));
    batch.Delete(OldMessageTimeKey(tenant, message->ts, mid));
    batch.Delete(it->key());
    ++*migrated;
    if (++in_batch == kBatchMessages) {
      if (Status s = Write(db, &batch, false); !s.ok()) return s;
      in_batch = 0;
    }
  }
  if (!it->status().ok()) return FromLevelDb(it->status());
  if (Status s = Write(db, &batch, false); !s.ok()) return s;
  // Time index records whose message was gone already (none unless the database was damaged).
  if (Status s = DeleteAll(db, kOldMessageTimeRecord); !s.ok()) return s;
  return RewriteHeaders(db);
}

}  // namespace

Status MigrateToCurrentFormat(leveldb::DB* db, const std::string& dir, size_t* migrated) {
  *migrated = 0;
  std::string value;
  leveldb::Status status = db->Get(VerifiedRead(), FormatKey(), &value);
  uint64_t format = 1;  // a database without the record
  if (status.ok()) {
    if (!DecodeFixed64(value, &format)) return Corrupt("format");
  } else if (!status.IsNotFound()) {
    return FromLevelDb(status);
  }
  if (format == kFormatVersion) return Status::OK();
  if (format > kFormatVersion) {
    return Status::Internal("leveldb database " + dir + " has record format " +
                            std::to_string(format) + ", newer than this version reads (" +
                            std::to_string(kFormatVersion) +
                            "); it was not opened and nothing was changed. Run the newer version");
  }
  if (Status s = MigrateFrom1(db, migrated); !s.ok()) return s;
  // Last and with fsync: the log then holds every batch above, and a crash before this write
  // makes the next open finish the migration.
  leveldb::WriteBatch batch;
  batch.Put(FormatKey(), EncodeFixed64(kFormatVersion));
  if (Status s = Write(db, &batch, true); !s.ok()) return s;
  if (*migrated > 0) {
    IM_LOG_INFO("inbox database {}: migrated {} messages from record format 1 to {}", dir,
                *migrated, kFormatVersion);
  }
  return Status::OK();
}

}  // namespace im::internal::leveldb_queue
