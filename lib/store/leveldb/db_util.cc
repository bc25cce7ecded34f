#include "store/leveldb/db_util.h"

#include <filesystem>

namespace im::internal {

Status FromLevelDb(const leveldb::Status& status) {
  return Status::Internal("leveldb: " + status.ToString());
}

Status Corrupt(std::string_view what) {
  return Status::Internal("leveldb: corrupt " + std::string(what) + " record");
}

Status OpenDb(const std::string& dir, const LevelDbOptions& o, leveldb::Cache* cache,
              const leveldb::FilterPolicy* filter, std::unique_ptr<leveldb::DB>* db) {
  if (o.create_if_missing) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return Status::Unavailable("cannot create " + dir + ": " + error.message());
  }
  leveldb::Options options;
  options.create_if_missing = o.create_if_missing;
  options.write_buffer_size = o.write_buffer_bytes;
  options.max_file_size = o.max_file_bytes;
  options.compression = o.compression ? leveldb::kSnappyCompression : leveldb::kNoCompression;
  options.block_cache = cache;
  // Most lookups of a miss (an unknown user, a new dedup key) then cost a memory check.
  options.filter_policy = filter;
  leveldb::DB* raw = nullptr;
  leveldb::Status status = leveldb::DB::Open(options, dir, &raw);
  if (!status.ok()) {
    if (status.IsIOError()) return Status::Unavailable("leveldb: " + status.ToString());
    return FromLevelDb(status);
  }
  db->reset(raw);
  return Status::OK();
}

}  // namespace im::internal
