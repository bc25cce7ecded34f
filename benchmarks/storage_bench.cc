// storage_bench: what the LevelDB OfflineQueue writes per message, then OfflineQueue throughput in
// the style of LevelDB's db_bench.
//
// The first table counts, for a fixed number of appends against a fresh LevelDB queue, the
// LevelDB records (puts and deletes) and bytes (write batches as encoded into LevelDB's log) the
// queue wrote, divided by the number of messages:
//
//   case  messages  records/msg  bytes/msg
//
// "1:1" is chat.send between two users (the receiver's and the sender's inbox) with a dedup key;
// "group N" indexes one message into N inboxes (the sender's among them), with a dedup key.
// Appends go one at a time (one write batch each) unless the case says batch=64. Every inbox
// exists before the count starts (creating one writes its header once).
//
// Then each throughput case runs for about --seconds against a fresh queue and prints one row:
//
//   backend  case  ops/s  entries/s  MB/s  us/op
//
// An op is one appended message (entries/s counts inbox entries: ops x recipients) or one fetched
// page (entries/s counts the messages it returned). MB/s counts message bodies. "batch=64" appends
// through AppendBatch, which the LevelDB backend turns into one write (group commit).
//
// Usage: storage_bench [--seconds N] [--dir PATH]
//   --seconds N  time per case (default 1)
//   --dir PATH   where LevelDB cases keep their data (default: a temporary directory, removed at
//                the end); use it to measure a real disk rather than /tmp. Each case uses a fresh
//                subdirectory and removes it.
//
// Exit status: 0; 1 when a case failed (the row says why); 2 for bad flags.

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "store/leveldb/write_stats.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kBodyBytes = 100;
constexpr size_t kUsers = 10000;  // recipients are drawn from this many users
constexpr size_t kFetchInbox = 10000;
constexpr size_t kFetchPage = 100;

struct Flags {
  double seconds = 1;
  std::string dir;
};

struct Measurement {
  uint64_t ops = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::string error;  // empty when the case ran
};

using Opener = std::function<im::Result<std::shared_ptr<im::OfflineQueue>>()>;

const std::string kBody(kBodyBytes, 'x');

std::vector<im::UserKey> Users() {
  std::vector<im::UserKey> users;
  users.reserve(kUsers);
  for (size_t i = 0; i < kUsers; ++i) users.push_back({"default", "user" + std::to_string(i)});
  return users;
}

im::AppendRequest MakeRequest(uint64_t mid, const std::vector<im::UserKey>& users, size_t first,
                              size_t recipients) {
  auto message = std::make_shared<im::Message>();
  message->mid = mid;
  message->tenant = "default";
  message->from = users[first].user;
  message->body = kBody;
  message->ts = im::SystemClock()->NowMs();
  im::AppendRequest request;
  request.dedup_key = message->from + "/" + std::to_string(mid);  // as chat.send's cid
  request.message = std::move(message);
  // Consecutive users mod kUsers: distinct while recipients <= kUsers.
  for (size_t k = 0; k < recipients; ++k) request.recipients.push_back(users[(first + k) % kUsers]);
  request.sender_index = 0;
  return request;
}

double Elapsed(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Measurement RunAppends(im::OfflineQueue& queue, size_t recipients, size_t batch_size,
                       double seconds) {
  static const std::vector<im::UserKey> users = Users();
  Measurement m;
  std::mt19937_64 rng(42);
  uint64_t mid = 0;
  std::vector<im::AppendRequest> batch;
  const Clock::time_point start = Clock::now();
  do {
    batch.clear();
    for (size_t i = 0; i < batch_size; ++i) {
      batch.push_back(MakeRequest(++mid, users, rng() % kUsers, recipients));
    }
    if (batch_size == 1) {
      im::Result<im::AppendResult> r = queue.Append(batch[0]);
      if (!r.ok()) m.error = r.status().ToString();
    } else {
      for (const auto& r : queue.AppendBatch(batch)) {
        if (!r.ok()) m.error = r.status().ToString();
      }
    }
    if (!m.error.empty()) return m;
    m.ops += batch_size;
    m.entries += batch_size * recipients;
    m.bytes += batch_size * kBodyBytes;
  } while (Elapsed(start) < seconds);
  m.seconds = Elapsed(start);
  return m;
}

Measurement RunFetches(im::OfflineQueue& queue, double seconds) {
  static const std::vector<im::UserKey> users = Users();
  Measurement m;
  std::vector<im::AppendRequest> batch;
  for (uint64_t mid = 1; mid <= kFetchInbox; ++mid) {
    batch.push_back(MakeRequest(mid, users, 0, 1));
    if (batch.size() == 64 || mid == kFetchInbox) {
      for (const auto& r : queue.AppendBatch(batch)) {
        if (!r.ok()) m.error = "fill: " + r.status().ToString();
      }
      if (!m.error.empty()) return m;
      batch.clear();
    }
  }
  std::mt19937_64 rng(7);
  const Clock::time_point start = Clock::now();
  do {
    const uint64_t after = rng() % (kFetchInbox - kFetchPage + 1);
    im::Result<im::FetchResult> page = queue.Fetch(users[0], after, kFetchPage);
    if (!page.ok()) {
      m.error = page.status().ToString();
      return m;
    }
    if (page->entries.size() != kFetchPage) {
      m.error = "short page: " + std::to_string(page->entries.size()) + " entries";
      return m;
    }
    ++m.ops;
    m.entries += page->entries.size();
    for (const im::InboxEntry& e : page->entries) m.bytes += e.message->body.size();
  } while (Elapsed(start) < seconds);
  m.seconds = Elapsed(start);
  return m;
}

// Appends `messages` messages of `recipients` inboxes each to a fresh LevelDB queue in `dir`, in
// batches of `batch_size`, and prints what it wrote per message. False when an append failed.
bool PrintWritesPerMessage(const std::string& dir, const std::string& name, size_t recipients,
                           size_t messages, size_t batch_size) {
  static const std::vector<im::UserKey> users = Users();
  std::error_code error;
  fs::remove_all(dir, error);
  std::string failure;
  im::internal::LevelDbWriteStats stats;
  {
    im::Result<std::shared_ptr<im::OfflineQueue>> queue = im::OpenLevelDbOfflineQueue(dir);
    if (!queue.ok()) {
      failure = queue.status().ToString();
    } else {
      // Every inbox exists before the count starts: what an append costs between known users,
      // not the one-time creation of an inbox.
      for (const im::UserKey& user : users) {
        if (failure.empty() && !(*queue)->Info(user).ok()) failure = "info failed";
      }
      im::internal::LevelDbWriteStats before;
      if (!im::internal::GetLevelDbWriteStats(**queue, &before)) failure = "no write stats";
      std::mt19937_64 rng(11);
      std::vector<im::AppendRequest> batch;
      for (uint64_t mid = 1; mid <= messages && failure.empty(); ++mid) {
        batch.push_back(MakeRequest(mid, users, rng() % kUsers, recipients));
        if (batch.size() < batch_size && mid < messages) continue;
        for (const auto& r : (*queue)->AppendBatch(batch)) {
          if (!r.ok()) failure = r.status().ToString();
        }
        batch.clear();
      }
      if (!im::internal::GetLevelDbWriteStats(**queue, &stats)) failure = "no write stats";
      stats.records -= before.records;
      stats.bytes -= before.bytes;
    }
  }
  fs::remove_all(dir, error);
  if (!failure.empty()) {
    std::printf("%-24s error: %s\n", name.c_str(), failure.c_str());
    return false;
  }
  const double n = static_cast<double>(messages);
  std::printf("%-24s %9zu %12.2f %10.1f\n", name.c_str(), messages,
              static_cast<double>(stats.records) / n, static_cast<double>(stats.bytes) / n);
  std::fflush(stdout);
  return true;
}

void PrintRow(const char* backend, const std::string& name, const Measurement& m) {
  if (!m.error.empty()) {
    std::printf("%-8s %-28s error: %s\n", backend, name.c_str(), m.error.c_str());
  } else {
    // A memory fetch hands out pointers to stored messages and copies no body: a MB/s figure
    // there would measure nothing, so the column shows "-".
    const bool copies = std::string(backend) != "memory" || name.rfind("fetch", 0) != 0;
    char mbps[32] = "-";
    if (copies) {
      std::snprintf(mbps, sizeof mbps, "%.2f", static_cast<double>(m.bytes) / m.seconds / 1e6);
    }
    std::printf("%-8s %-28s %12.0f %12.0f %8s %9.2f\n", backend, name.c_str(),
                static_cast<double>(m.ops) / m.seconds, static_cast<double>(m.entries) / m.seconds,
                mbps, m.seconds * 1e6 / m.ops);
  }
  std::fflush(stdout);
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& name, std::string* out) {
      if (arg == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (arg.rfind(name + "=", 0) == 0) {
        *out = arg.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    std::string text;
    if (value("--seconds", &text)) {
      char* end = nullptr;
      flags->seconds = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || !(flags->seconds > 0)) return false;
    } else if (!value("--dir", &flags->dir)) {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr, "usage: %s [--seconds N] [--dir PATH]\n", argv[0]);
    return 2;
  }
  std::string base = flags.dir;
  const bool temporary = base.empty();
  if (temporary) {
    char path[] = "/tmp/storage_bench-XXXXXX";
    if (mkdtemp(path) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    base = path;
  }
  std::error_code error;
  fs::create_directories(base, error);

  std::printf("storage_bench: %.1f s per case, %zu-byte bodies, %zu users, leveldb in %s\n",
              flags.seconds, kBodyBytes, kUsers, base.c_str());

  bool failed = false;
  std::printf("%-24s %9s %12s %10s\n", "leveldb writes", "messages", "records/msg", "bytes/msg");
  const std::string writes_dir = base + "/writes";
  failed |= !PrintWritesPerMessage(writes_dir, "1:1", 2, 2000, 1);
  failed |= !PrintWritesPerMessage(writes_dir, "1:1 batch=64", 2, 2048, 64);
  failed |= !PrintWritesPerMessage(writes_dir, "group 10", 10, 1000, 1);
  failed |= !PrintWritesPerMessage(writes_dir, "group 1000", 1000, 100, 1);
  std::printf("\n");

  std::printf("%-8s %-28s %12s %12s %8s %9s\n", "backend", "case", "ops/s", "entries/s", "MB/s",
              "us/op");

  int case_number = 0;
  auto run = [&](const char* backend, const std::string& name, bool sync,
                 const std::function<Measurement(im::OfflineQueue&)>& body) {
    const std::string dir = base + "/case-" + std::to_string(++case_number);
    fs::remove_all(dir, error);
    Measurement m;
    {
      std::shared_ptr<im::OfflineQueue> queue;
      if (std::string(backend) == "memory") {
        queue = im::NewMemoryOfflineQueue();
      } else {
        im::LevelDbOptions db;
        db.sync_writes = sync;
        im::Result<std::shared_ptr<im::OfflineQueue>> opened =
            im::OpenLevelDbOfflineQueue(dir, {}, db);
        if (opened.ok()) {
          queue = std::move(opened).value();
        } else {
          m.error = opened.status().ToString();
        }
      }
      if (queue != nullptr) m = body(*queue);
    }
    fs::remove_all(dir, error);
    failed = failed || !m.error.empty();
    PrintRow(backend, name, m);
  };

  for (const char* backend : {"memory", "leveldb"}) {
    for (size_t recipients : {1, 2, 100}) {
      for (size_t batch : {1, 64}) {
        const std::string name =
            "append r=" + std::to_string(recipients) + " batch=" + std::to_string(batch);
        run(backend, name, false,
            [&](im::OfflineQueue& q) { return RunAppends(q, recipients, batch, flags.seconds); });
      }
    }
    if (std::string(backend) == "leveldb") {
      run(backend, "append r=1 batch=64 sync", true,
          [&](im::OfflineQueue& q) { return RunAppends(q, 1, 64, flags.seconds); });
    }
    run(backend, "fetch 100 of 10000", false,
        [&](im::OfflineQueue& q) { return RunFetches(q, flags.seconds); });
  }
  if (temporary) fs::remove_all(base, error);
  return failed ? 1 : 0;
}
