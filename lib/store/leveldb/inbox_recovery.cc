#include "store/leveldb/inbox_recovery.h"

#include <fcntl.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include "store/leveldb/db_util.h"
#include "store/leveldb/keys.h"

namespace im::internal::leveldb_queue {
namespace {

constexpr char kWriteCountFile[] = "/WRITE-COUNT";
constexpr size_t kWriteCountBytes = 16;  // the count, then its complement, both big-endian
// Keys per write batch while giving new epochs: bounds the memory of one batch.
constexpr size_t kBatchKeys = 10000;

void PutBig(uint64_t value, unsigned char* out) {
  for (int i = 7; i >= 0; --i, value >>= 8) out[i] = static_cast<unsigned char>(value);
}

uint64_t GetBig(const unsigned char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | in[i];
  return value;
}

// Writes in batches of at most kBatchKeys keys.
class BatchWriter {
 public:
  explicit BatchWriter(leveldb::DB* db) : db_(db) {}
  Status Put(const std::string& key, const std::string& value) {
    batch_.Put(key, value);
    return ++ops_ >= kBatchKeys ? Flush() : Status::OK();
  }
  Status Delete(const leveldb::Slice& key) {
    batch_.Delete(key);
    return ++ops_ >= kBatchKeys ? Flush() : Status::OK();
  }
  Status Flush() {
    if (ops_ == 0) return Status::OK();
    leveldb::Status status = db_->Write(leveldb::WriteOptions(), &batch_);
    batch_.Clear();
    ops_ = 0;
    return status.ok() ? Status::OK() : FromLevelDb(status);
  }

 private:
  leveldb::DB* const db_;
  leveldb::WriteBatch batch_;
  size_t ops_ = 0;
};

}  // namespace

bool InboxSeqRange(leveldb::Iterator* it, const std::string& prefix, uint64_t* low, uint64_t* high,
                   std::string* first_value) {
  it->Seek(prefix);
  if (!it->Valid() || !ParseInboxKey(View(it->key()), prefix, low)) return false;
  if (first_value != nullptr) first_value->assign(it->value().data(), it->value().size());
  const std::string next = PrefixSuccessor(prefix);
  if (next.empty()) {
    it->SeekToLast();
  } else {
    it->Seek(next);
    if (it->Valid()) {
      it->Prev();
    } else {
      it->SeekToLast();
    }
  }
  return it->Valid() && ParseInboxKey(View(it->key()), prefix, high);
}

std::string NewEpoch() {
  // SipHash of a per-thread counter under a per-thread random key: as unpredictable and as
  // unlikely to repeat as 8 fresh random bytes, without a getrandom call per epoch (a new
  // user's first login creates one, and a system call is costly on some virtual machines).
  struct Source {
    unsigned char key[crypto_shorthash_KEYBYTES];
    uint64_t next = 0;
    Source() { randombytes_buf(key, sizeof key); }
    ~Source() { sodium_memzero(key, sizeof key); }
  };
  thread_local Source source;
  unsigned char counter[8];
  PutBig(source.next++, counter);
  unsigned char raw[crypto_shorthash_BYTES];
  crypto_shorthash(raw, counter, sizeof counter, source.key);
  char hex[2 * sizeof raw + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return std::string(hex, 2 * sizeof raw);
}

const std::string& WriteCountKey() {
  static const std::string* key = new std::string("!write-count");
  return *key;
}

Status ReadWriteCount(leveldb::DB* db, uint64_t* count) {
  std::string value;
  leveldb::Status status = db->Get(VerifiedRead(), WriteCountKey(), &value);
  *count = 0;
  if (status.IsNotFound()) return Status::OK();
  if (!status.ok()) return FromLevelDb(status);
  return DecodeFixed64(value, count) ? Status::OK() : Corrupt("write count");
}

WriteCountFile::~WriteCountFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status WriteCountFile::Open(const std::string& dir, uint64_t* count, bool* valid) {
  const std::string path = dir + kWriteCountFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::Unavailable("cannot open " + path + ": " + std::strerror(errno));
  unsigned char buffer[kWriteCountBytes + 1];
  const ssize_t n = ::pread(fd_, buffer, sizeof buffer, 0);
  *count = 0;
  *valid = true;
  if (n == 0) return Status::OK();  // new: a database written before the file existed
  *count = GetBig(buffer);
  *valid = n == static_cast<ssize_t>(kWriteCountBytes) && ~*count == GetBig(buffer + 8);
  return Status::OK();
}

void WriteCountFile::Store(uint64_t count) {
  if (fd_ < 0) return;
  unsigned char buffer[kWriteCountBytes];
  PutBig(count, buffer);
  PutBig(~count, buffer + 8);
  // One write of 16 bytes at offset 0: within one sector, so never half old and half new.
  (void)::pwrite(fd_, buffer, sizeof buffer, 0);
}

Status VerifyHeaders(leveldb::DB* db, const std::string& dir) {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ScanRead()));
  for (it->Seek(std::string(1, kHeaderRecord)); it->Valid() && it->key()[0] == kHeaderRecord;
       it->Next()) {
    InboxHeader header;
    if (!DecodeHeader(View(it->value()), &header)) {
      return Damaged(dir, "an inbox header does not decode");
    }
  }
  if (it->status().IsCorruption()) return Damaged(dir, it->status().ToString());
  return it->status().ok() ? Status::OK() : FromLevelDb(it->status());
}

Status NewEpochForAll(leveldb::DB* db, uint64_t write_count, size_t* inboxes) {
  *inboxes = 0;
  BatchWriter writer(db);
  // Iterators read the database as it was when they were made: the headers written here do not
  // show up in the scans.
  std::unique_ptr<leveldb::Iterator> headers(db->NewIterator(ScanRead()));
  std::unique_ptr<leveldb::Iterator> entries(db->NewIterator(ScanRead()));
  for (headers->Seek(std::string(1, kHeaderRecord));
       headers->Valid() && headers->key()[0] == kHeaderRecord; headers->Next()) {
    InboxHeader header;
    if (!DecodeHeader(View(headers->value()), &header)) return Corrupt("inbox header");
    header.epoch = NewEpoch();
    uint64_t low = 0;
    uint64_t high = 0;
    if (InboxSeqRange(entries.get(), InboxPrefixOfHeader(View(headers->key())), &low, &high)) {
      header.last_seq = std::max(header.last_seq, high);
      header.first_seq = low;
    } else {
      header.first_seq = header.last_seq + 1;
    }
    if (Status s = writer.Put(headers->key().ToString(), EncodeHeader(header)); !s.ok()) return s;
    ++*inboxes;
  }
  if (!headers->status().ok()) return FromLevelDb(headers->status());
  if (!entries->status().ok()) return FromLevelDb(entries->status());
  if (Status s = writer.Flush(); !s.ok()) return s;  // the lookups below see these headers

  // Entries whose header is gone: a header covering them, so their seqs are never handed out
  // again.
  std::string value;
  entries->Seek(std::string(1, kInboxRecord));
  while (entries->Valid() && entries->key()[0] == kInboxRecord) {
    if (entries->key().size() <= 9) return Corrupt("inbox entry key");
    const std::string prefix(entries->key().data(), entries->key().size() - 8);
    std::string header_key = prefix;
    header_key[0] = kHeaderRecord;
    leveldb::Status found = db->Get(ScanRead(), header_key, &value);
    if (found.IsNotFound()) {
      InboxHeader header;
      header.epoch = NewEpoch();
      if (!InboxSeqRange(entries.get(), prefix, &header.first_seq, &header.last_seq)) {
        return Corrupt("inbox entry key");
      }
      if (Status s = writer.Put(header_key, EncodeHeader(header)); !s.ok()) return s;
      ++*inboxes;
    } else if (!found.ok()) {
      return FromLevelDb(found);
    }
    const std::string next = PrefixSuccessor(prefix);
    if (next.empty()) break;
    entries->Seek(next);
  }
  if (!entries->status().ok()) return FromLevelDb(entries->status());

  // Acks count seqs of the old epochs: a device starts the new one with nothing acked.
  std::unique_ptr<leveldb::Iterator> acks(db->NewIterator(ScanRead()));
  for (acks->Seek(std::string(1, kAckRecord)); acks->Valid() && acks->key()[0] == kAckRecord;
       acks->Next()) {
    if (Status s = writer.Delete(acks->key()); !s.ok()) return s;
  }
  if (!acks->status().ok()) return FromLevelDb(acks->status());
  if (Status s = writer.Flush(); !s.ok()) return s;

  // Last, so that a crash before it makes the next open give new epochs again.
  leveldb::WriteOptions sync;
  sync.sync = true;
  leveldb::Status status = db->Put(sync, WriteCountKey(), EncodeFixed64(write_count));
  return status.ok() ? Status::OK() : FromLevelDb(status);
}

}  // namespace im::internal::leveldb_queue
