// What every LevelDB-backed store does the same way: opening a database (directory, block
// cache, bloom filter, error mapping), holding it with its cache and filter, snapshots, and
// turning LevelDB errors into Status.
#ifndef IM_STORE_LEVELDB_DB_UTIL_H_
#define IM_STORE_LEVELDB_DB_UTIL_H_

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>

#include <memory>
#include <string>
#include <string_view>

#include "im/backends.h"
#include "im/status.h"

namespace im::internal {

// 500 internal with LevelDB's message.
Status FromLevelDb(const leveldb::Status& status);
// 500 internal for a record that does not decode.
Status Corrupt(std::string_view what);

// The error name of a database found damaged at open.
inline constexpr std::string_view kDamaged = "damaged";

// 500 `damaged`: the database at `dir` is damaged (`what`), was not opened, and what to do.
Status Damaged(const std::string& dir, std::string_view what);

// Reads that verify block checksums: a damaged table block is an error, never wrong data.
leveldb::ReadOptions VerifiedRead();

// VerifiedRead() for a one-off scan (open, repair, migration, sweeps): it does not fill the block
// cache, so it never evicts what lookups need.
leveldb::ReadOptions ScanRead();

// The bytes of a LevelDB slice.
inline std::string_view View(const leveldb::Slice& slice) { return {slice.data(), slice.size()}; }

// Opens the database at `dir` with `cache` and `filter` (owned by the caller, outliving the
// database), with LevelDB's paranoid checks: a damaged log record, MANIFEST or table read at
// open fails the open instead of being skipped. Creates missing parent directories when
// create_if_missing (LevelDB creates only the last path component, and "leveldb:./data/inbox"
// should just work). Refuses a directory that holds table files or a non-empty log but no
// CURRENT, which LevelDB would otherwise treat as a new empty database. Damage (LevelDB's
// corruption, a missing CURRENT) is Damaged(); an I/O error, which includes LevelDB's LOCK
// held by another open, is 503 unavailable; other errors 500.
Status OpenDb(const std::string& dir, const LevelDbOptions& options, leveldb::Cache* cache,
              const leveldb::FilterPolicy* filter, std::unique_ptr<leveldb::DB>* db);

// A store's database with what it needs beside it: the block cache (block_cache_bytes) and the
// Bloom filter (10 bits a key) that leveldb::Options only borrows, and the write options of
// `options` (sync_writes). The database is closed first, before its cache and filter go.
class DbHandle {
 public:
  explicit DbHandle(const LevelDbOptions& options)
      : options_(options),
        block_cache_(leveldb::NewLRUCache(options.block_cache_bytes)),
        filter_policy_(leveldb::NewBloomFilterPolicy(10)) {
    write_options_.sync = options.sync_writes;
  }
  DbHandle(const DbHandle&) = delete;
  DbHandle& operator=(const DbHandle&) = delete;

  // OpenDb on `dir` with this handle's cache and filter. Once, before any other use.
  Status Open(const std::string& dir) {
    return OpenDb(dir, options_, block_cache_.get(), filter_policy_.get(), &db_);
  }
  leveldb::DB* get() const { return db_.get(); }
  leveldb::DB* operator->() const { return db_.get(); }
  const leveldb::WriteOptions& write_options() const { return write_options_; }

 private:
  const LevelDbOptions options_;
  leveldb::WriteOptions write_options_;
  const std::unique_ptr<leveldb::Cache> block_cache_;
  const std::unique_ptr<const leveldb::FilterPolicy> filter_policy_;
  std::unique_ptr<leveldb::DB> db_;  // declared last: closed first
};

// An implicit snapshot of `db`, released on scope exit.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(leveldb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;

  const leveldb::Snapshot* get() const { return snapshot_; }
  // VerifiedRead() at this snapshot.
  leveldb::ReadOptions Options() const {
    leveldb::ReadOptions options = VerifiedRead();
    options.snapshot = snapshot_;
    return options;
  }

 private:
  leveldb::DB* const db_;
  const leveldb::Snapshot* const snapshot_;
};

// Runs LevelDB's RepairDB on `dir` while holding its LOCK, so that a database another
// process (or this one) has open is refused with 503 unavailable instead of being rewritten
// under it. 404 when `dir` is not a directory.
Status RepairDb(const std::string& dir);

}  // namespace im::internal

#endif  // IM_STORE_LEVELDB_DB_UTIL_H_
