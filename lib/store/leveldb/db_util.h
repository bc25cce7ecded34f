// What every LevelDB-backed store does the same way: opening a database (directory, block
// cache, bloom filter, error mapping) and turning LevelDB errors into Status.
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

// Opens the database at `dir` with `cache` and `filter` (owned by the caller, outliving the
// database). Creates missing parent directories when create_if_missing (LevelDB creates only
// the last path component, and "leveldb:./data/inbox" should just work). An I/O error, which
// includes LevelDB's LOCK held by another open, is 503 unavailable; other errors 500.
Status OpenDb(const std::string& dir, const LevelDbOptions& options, leveldb::Cache* cache,
              const leveldb::FilterPolicy* filter, std::unique_ptr<leveldb::DB>* db);

}  // namespace im::internal

#endif  // IM_STORE_LEVELDB_DB_UTIL_H_
