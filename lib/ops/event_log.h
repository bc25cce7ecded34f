// The business event log: one JSON object a line (login, logout, kick, login_failed,
// group_created, group_joined, group_quit, message_rejected, slow_consumer_closed) with time,
// node, tenant, user, device, session, remote address and reason. Never a password or a token.
// The file is size-rotated: past max_file_bytes, events.log becomes events.1.log (older ones
// shift up to events.<max_files>.log, the oldest is deleted) and a new events.log starts.
//
// Emit never touches the file: it formats the line on the caller's thread (an io thread, a
// worker, the host's) and moves it into a bounded queue. One thread of its own, `im-events`,
// writes what is queued in batches and flushes at the latest flush_ms after a line was written,
// so a slow or stalled disk never holds up a network thread. The writer is woken by the first
// line after a flush, which it writes at once; until that line's flush it sleeps, and the lines
// emitted meanwhile are written and flushed together at the flush (earlier once half the bound
// is waiting): two wake-ups per flush_ms under load, not one per event. At the bound
// (queue_limit lines waiting) the event is dropped and counted (dropped(),
// im_event_log_dropped_total) and a program-log warning says so, at most once per
// kDropWarnIntervalMs. Stop (and the destructor) writes and flushes every line queued before
// it; events emitted after Stop are dropped.
//
// Thread-safety: Emit, dropped and Stop are safe from any thread.
#ifndef IM_OPS_EVENT_LOG_H_
#define IM_OPS_EVENT_LOG_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "im/result.h"
#include "im/types.h"

namespace spdlog {
class logger;
}

namespace im::internal {

class Metrics;

struct BusinessEvent {
  const char* event = "";
  std::string tenant;
  std::string user;
  std::string device;
  std::string session;
  std::string remote;
  std::string reason;
  std::string group;  // group events
};

// How the writer thread queues and flushes.
struct EventLogQueue {
  size_t limit = 8192;         // lines waiting to be written; one more is dropped
  Metrics* metrics = nullptr;  // when set, counts the dropped lines
  int64_t flush_ms = 100;      // a written line reaches the file at the latest this much later
};

class EventLog {
 public:
  static constexpr int64_t kDropWarnIntervalMs = 10000;

  // Appends to `path` (created when missing). An empty path makes a log that drops everything
  // (and starts no thread).
  static Result<std::unique_ptr<EventLog>> Open(const std::string& path, std::string node,
                                                Clock* clock, size_t max_file_bytes,
                                                size_t max_files,
                                                EventLogQueue queue = EventLogQueue());
  ~EventLog();  // Stop()
  void Emit(const BusinessEvent& e);
  // Writes and flushes everything queued, then ends the writer thread. Idempotent.
  void Stop();
  // Blocks until every line emitted before the call is written and flushed to the file (at
  // once, not after flush_ms). A no-op for a log without a file or after Stop. Not while the
  // writer is held.
  void Flush();
  // Lines dropped at the queue bound or after Stop.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // For tests: while held, the writer takes nothing from the queue (as if the disk stalled),
  // so the queue fills up to its bound. Stop ends a hold.
  void HoldWriterForTest(bool hold);
  // Lines queued that the writer has not taken yet.
  size_t waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

 private:
  EventLog(std::shared_ptr<spdlog::logger> file, std::string node, Clock* clock,
           EventLogQueue queue);
  void Run();
  void Drop();
  // Lines waiting that wake a writer sleeping until its flush: half the bound.
  size_t HighWater() const { return options_.limit > 1 ? options_.limit / 2 : 1; }

  std::shared_ptr<spdlog::logger> file_;  // used by the writer thread alone
  const std::string node_;
  Clock* clock_;
  const EventLogQueue options_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  bool held_ = false;              // guarded by mu_
  bool batching_ = false;          // guarded by mu_: the writer sleeps until a pending flush
  bool flush_now_ = false;         // guarded by mu_: a Flush waits
  uint64_t queued_total_ = 0;      // guarded by mu_: lines ever queued
  uint64_t flushed_total_ = 0;     // guarded by mu_: lines written and flushed
  bool writer_done_ = false;       // guarded by mu_
  std::condition_variable flushed_;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> unreported_{0};  // dropped since the last warning
  std::atomic<int64_t> next_warn_ms_{0};  // steady clock
  std::thread writer_;
  std::once_flag joined_;
};

}  // namespace im::internal

#endif  // IM_OPS_EVENT_LOG_H_
