#include "store/leveldb/db_util.h"

#include <leveldb/env.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "base/thread_name.h"

namespace im::internal {
namespace {

// LevelDB's Env with its background work (memtable flushes, compactions) on a thread named
// im-leveldb at a lower CPU priority (nice +10): on a small machine the threads that serve
// clients then win the CPU when both want it, which keeps delivery latency low; compaction
// takes the slack. Writers still wait when compaction falls far behind (LevelDB's own
// level-0 slowdown and stop), so nothing grows without bound.
class BackgroundEnv final : public leveldb::EnvWrapper {
 public:
  BackgroundEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  void Schedule(void (*function)(void*), void* arg) override {
    target()->Schedule(&BackgroundEnv::Run, new Job{function, arg});
  }

 private:
  struct Job {
    void (*function)(void*);
    void* arg;
  };

  static void Run(void* p) {
    std::unique_ptr<Job> job(static_cast<Job*>(p));
    thread_local const bool configured = [] {
      NameThisThread("im-leveldb");
      (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
      return true;
    }();
    (void)configured;
    job->function(job->arg);
  }
};

leveldb::Env* Background() {
  static BackgroundEnv* env = new BackgroundEnv;  // never destroyed: databases may outlive main
  return env;
}

}  // namespace

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
  options.env = Background();
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
