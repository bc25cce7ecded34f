// Loss and damage handling of the LevelDB inbox database: the write count that tells a database
// which lost committed writes from one that did not, the check of every inbox header at open,
// and the new epochs every inbox gets when writes were lost or the database was repaired.
//
// Why a write count: LevelDB replays its log at open and stops without an error, even with
// paranoid checks, at a record cut short at the end of the file, taking it for a write the
// process died in (db/log_reader.cc: a short header or payload at EOF is kEof, not corruption).
// A log truncated by damage, or a machine crash that kept later pages of other files but not
// the log's, therefore opens as an older database whose headers would hand out seqs again. So
// every write batch of the queue carries the count of batches committed (key WriteCountKey()),
// and after each commit the count is also written to the file WRITE-COUNT beside the database.
// The file is written after the database, so an intact database is never behind it; a file
// count above the database's means committed writes are gone.
//
// Thread-safety: the functions run at open and repair, before the queue is shared;
// WriteCountFile::Store needs its caller to serialize calls (the queue's writer lock).
#ifndef IM_STORE_LEVELDB_INBOX_RECOVERY_H_
#define IM_STORE_LEVELDB_INBOX_RECOVERY_H_

#include <leveldb/db.h>
#include <leveldb/iterator.h>

#include <cstdint>
#include <string>

#include "im/status.h"

namespace im::internal::leveldb_queue {

// The lowest and highest seq present under the inbox key prefix `prefix`, read with `it` (two
// seeks, whatever the number of entries), and the value of the lowest entry when `first_value`
// is not null. False when there is none (or the iterator failed: check its status).
bool InboxSeqRange(leveldb::Iterator* it, const std::string& prefix, uint64_t* low, uint64_t* high,
                   std::string* first_value = nullptr);

// 16 hex chars, unpredictable (a keyed hash of a counter under a random key per thread). Random
// rather than time-based, so that a wiped directory, or two processes started in the same
// millisecond, never reuse an epoch.
std::string NewEpoch();

// The key of the write count in the database (a record type of its own, '!').
const std::string& WriteCountKey();

// The write count stored in `db`; 0 when absent (a database written before it existed).
Status ReadWriteCount(leveldb::DB* db, uint64_t* count);

// The file copy of the write count, written after each committed batch.
class WriteCountFile {
 public:
  WriteCountFile() = default;
  ~WriteCountFile();
  WriteCountFile(const WriteCountFile&) = delete;
  WriteCountFile& operator=(const WriteCountFile&) = delete;

  // Opens or creates `dir`/WRITE-COUNT. *count is the count it holds (0 when new); *valid is
  // false when the file exists but does not hold a count (damaged).
  Status Open(const std::string& dir, uint64_t* count, bool* valid);
  // Best effort and without fsync: a copy that lags behind the database only weakens the
  // check, it never raises a false alarm.
  void Store(uint64_t count);

 private:
  int fd_ = -1;
};

// Reads every inbox header with checksums verified: a damaged one is Damaged(dir, ...), found
// at open rather than by the first append of that user.
Status VerifyHeaders(leveldb::DB* db, const std::string& dir);

// Gives every inbox a new epoch (clients that hold the old one resync from 0), also the inboxes
// whose header is gone but whose entries are not; raises each last_seq to at least the highest
// seq present and sets first_seq to the lowest; deletes every ack (they count seqs of the old
// epochs). Then stores `write_count` in the database, with fsync. *inboxes: how many.
Status NewEpochForAll(leveldb::DB* db, uint64_t write_count, size_t* inboxes);

}  // namespace im::internal::leveldb_queue

#endif  // IM_STORE_LEVELDB_INBOX_RECOVERY_H_
