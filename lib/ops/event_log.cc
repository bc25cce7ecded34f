#include "ops/event_log.h"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>

#include <utility>

#include "base/thread_name.h"
#include "base/utf8.h"
#include "im/types.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "protocol/json.h"

namespace im::internal {

namespace {

// `text` as well-formed UTF-8: each byte that is not part of a well-formed sequence becomes
// U+FFFD, so every line stays valid JSON whatever a field holds. (RapidJSON's writer escapes
// the control characters; it copies other bytes as they are.)
std::string WellFormed(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text, i, len);
      i += len;
    }
  }
  return out;
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path, std::string node,
                                                 Clock* clock, size_t max_file_bytes,
                                                 size_t max_files, EventLogQueue queue) {
  std::shared_ptr<spdlog::logger> file;
  if (!path.empty()) {
    if (max_file_bytes == 0 || max_files == 0) {
      return Status::BadRequest("event log max_file_bytes and max_files must be positive");
    }
    if (queue.limit == 0 || queue.flush_ms < 1) {
      return Status::BadRequest("event log queue limit and flush_ms must be positive");
    }
    try {
      // Only the writer thread touches the sink: the single-threaded one suffices.
      auto sink =
          std::make_shared<spdlog::sinks::rotating_file_sink_st>(path, max_file_bytes, max_files);
      file = std::make_shared<spdlog::logger>("events", std::move(sink));
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot open event log " + path + ": " + e.what());
    }
    file->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%v", spdlog::pattern_time_type::utc, "\n"));
    file->set_level(spdlog::level::info);
    // The writer flushes by time (EventLogQueue::flush_ms), not per line.
    file->flush_on(spdlog::level::off);
  }
  return std::unique_ptr<EventLog>(
      new EventLog(std::move(file), std::move(node), clock, queue));
}

EventLog::EventLog(std::shared_ptr<spdlog::logger> file, std::string node, Clock* clock,
                   EventLogQueue queue)
    : file_(std::move(file)), node_(std::move(node)), clock_(clock), options_(queue) {
  if (file_) writer_ = std::thread([this] { Run(); });
}

EventLog::~EventLog() { Stop(); }

void EventLog::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  // One join however many threads call Stop; the others wait until the last line is written.
  std::call_once(joined_, [this] {
    if (writer_.joinable()) writer_.join();
  });
}

void EventLog::Flush() {
  if (!file_) return;
  std::unique_lock<std::mutex> lock(mu_);
  if (writer_done_) return;
  const uint64_t target = queued_total_;
  if (flushed_total_ >= target) return;
  flush_now_ = true;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return writer_done_ || flushed_total_ >= target; });
}

void EventLog::HoldWriterForTest(bool hold) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = hold;
  }
  wake_.notify_one();
}

void EventLog::Emit(const BusinessEvent& e) {
  if (!file_) return;
  JsonWriter w;
  w.StartObject();
  w.Field("ts", static_cast<int64_t>(clock_->NowMs()));
  w.Field("event", e.event);
  w.Field("node", node_);
  auto opt = [&w](const char* k, const std::string& v) {
    if (v.empty()) return;
    // Nearly every field is well-formed already (ids are validated): written as it is, with no
    // copy; WellFormed gives the same text for those.
    if (IsValidUtf8(v)) {
      w.Field(k, std::string_view(v));
    } else {
      w.Field(k, WellFormed(v));
    }
  };
  opt("tenant", e.tenant);
  opt("user", e.user);
  opt("device", e.device);
  opt("session", e.session);
  opt("remote", e.remote);
  opt("group", e.group);
  opt("reason", e.reason);
  w.EndObject();
  std::string line(w.view());
  bool queued = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < options_.limit) {
      // A non-empty queue already has the writer awake (or held). While it sleeps until a
      // flush (batching_), lines wait for that flush; half the bound wakes it earlier.
      wake = (queue_.empty() && !batching_) || queue_.size() + 1 == HighWater();
      queue_.push_back(std::move(line));
      ++queued_total_;
      queued = true;
    }
  }
  if (wake) wake_.notify_one();
  if (!queued) Drop();
}

void EventLog::Drop() {
  dropped_.fetch_add(1, std::memory_order_relaxed);
  unreported_.fetch_add(1, std::memory_order_relaxed);
  if (options_.metrics != nullptr) options_.metrics->EventLogDropped();
  // One warning per interval at most: a full queue means the disk is behind, and a line per
  // dropped event would only add to the program log's own load.
  const int64_t now = SteadyMs();
  int64_t next = next_warn_ms_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_warn_ms_.compare_exchange_strong(next, now + kDropWarnIntervalMs,
                                             std::memory_order_relaxed)) {
    return;
  }
  IM_LOG_WARN("event log: dropped {} event(s): {} lines waiting for the writer (the bound) or "
              "the log stopped; see im_event_log_dropped_total",
              unreported_.exchange(0, std::memory_order_relaxed), options_.limit);
}

void EventLog::Run() {
  NameThisThread("im-events");
  std::deque<std::string> batch;
  bool unflushed = false;  // lines written since the last flush
  uint64_t taken = 0;      // lines taken from the queue so far
  std::chrono::steady_clock::time_point flush_at;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    batching_ = unflushed;
    if (unflushed) {
      wake_.wait_until(lock, flush_at, [this] {
        return stopping_ || flush_now_ || (!held_ && queue_.size() >= HighWater());
      });
    } else {
      wake_.wait(lock, [this] { return stopping_ || flush_now_ || (!held_ && !queue_.empty()); });
    }
    batching_ = false;
    if (stopping_ || !held_) batch.swap(queue_);
    const bool stop = stopping_;
    const bool flush_now = flush_now_;
    flush_now_ = false;
    lock.unlock();
    taken += batch.size();
    for (const std::string& line : batch) file_->info("{}", line);
    const auto now = std::chrono::steady_clock::now();
    if (!batch.empty() && !unflushed) {
      unflushed = true;
      flush_at = now + std::chrono::milliseconds(options_.flush_ms);
    }
    batch.clear();
    const bool flush = unflushed && (stop || flush_now || now >= flush_at);
    if (flush) {
      file_->flush();
      unflushed = false;
    }
    lock.lock();
    if (flush || flush_now) {
      if (!unflushed) flushed_total_ = taken;
      flushed_.notify_all();
    }
    // Emit queues nothing once stopping_ is set, so the swap above took the last lines.
    if (stop) {
      writer_done_ = true;
      flushed_.notify_all();
      return;
    }
  }
}

}  // namespace im::internal
