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

// LevelDB opens a directory without CURRENT as a new, empty database (create_if_missing), and
// the tables of the old one are then deleted as obsolete: a lost CURRENT must stop the open
// when there is data to lose.
Status CheckCurrent(const std::string& dir) {
  std::error_code error;
  if (std::filesystem::exists(dir + "/CURRENT", error)) return Status::OK();
  std::filesystem::directory_iterator it(dir, error);
  if (error) return Status::OK();  // no directory yet: a new database
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    // Only files that can hold data count: a MANIFEST or an empty log without CURRENT is
    // what a crash while LevelDB created the database leaves behind.
    const std::string ext = it->path().extension().string();
    if (ext == ".ldb" || ext == ".sst" || (ext == ".log" && it->file_size(error) > 0)) {
      return Damaged(dir, "it holds " + it->path().filename().string() + " but no CURRENT file");
    }
  }
  return Status::OK();
}

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

Status Damaged(const std::string& dir, std::string_view what) {
  return Status::Error(Code::kInternal, std::string(kDamaged),
                       "leveldb database " + dir + " is damaged (" + std::string(what) +
                           "); it was not opened and nothing was changed. Repair it (imd "
                           "repair): that recovers what it can and gives every inbox a new "
                           "epoch, so clients resync");
}

leveldb::ReadOptions VerifiedRead() {
  leveldb::ReadOptions options;
  options.verify_checksums = true;
  return options;
}

leveldb::ReadOptions ScanRead() {
  leveldb::ReadOptions options = VerifiedRead();
  options.fill_cache = false;
  return options;
}

Status OpenDb(const std::string& dir, const LevelDbOptions& o, leveldb::Cache* cache,
              const leveldb::FilterPolicy* filter, std::unique_ptr<leveldb::DB>* db) {
  if (Status s = CheckCurrent(dir); !s.ok()) return s;
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
  // A damaged log record fails the open instead of being dropped, and a damaged block found by
  // a compaction stops writes instead of being compacted away.
  options.paranoid_checks = true;
  options.env = Background();
  // Most lookups of a miss (an unknown user, a new dedup key) then cost a memory check.
  options.filter_policy = filter;
  leveldb::DB* raw = nullptr;
  leveldb::Status status = leveldb::DB::Open(options, dir, &raw);
  if (!status.ok()) {
    if (status.IsCorruption()) return Damaged(dir, status.ToString());
    if (status.IsIOError()) return Status::Unavailable("leveldb: " + status.ToString());
    return FromLevelDb(status);
  }
  db->reset(raw);
  return Status::OK();
}

Status RepairDb(const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return Status::NotFound(dir + " is not a directory");
  }
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::FileLock* lock = nullptr;
  leveldb::Status status = env->LockFile(dir + "/LOCK", &lock);
  if (!status.ok()) {
    return Status::Unavailable(dir + " is in use (" + status.ToString() +
                               "): stop the process that has it open, then repair");
  }
  leveldb::Options options;
  options.paranoid_checks = true;
  // RepairDB takes no lock of its own; ours keeps every other open out while it runs.
  status = leveldb::RepairDB(dir, options);
  (void)env->UnlockFile(lock);
  return status.ok() ? Status::OK() : FromLevelDb(status);
}

}  // namespace im::internal

namespace im {

Status RepairLevelDb(const std::string& dir) { return internal::RepairDb(dir); }

}  // namespace im
