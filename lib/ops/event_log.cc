#include "ops/event_log.h"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>

#include "base/utf8.h"
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

}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path, std::string node,
                                                 Clock* clock, size_t max_file_bytes,
                                                 size_t max_files) {
  std::shared_ptr<spdlog::logger> file;
  if (!path.empty()) {
    if (max_file_bytes == 0 || max_files == 0) {
      return Status::BadRequest("event log max_file_bytes and max_files must be positive");
    }
    try {
      auto sink =
          std::make_shared<spdlog::sinks::rotating_file_sink_mt>(path, max_file_bytes, max_files);
      file = std::make_shared<spdlog::logger>("events", std::move(sink));
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot open event log " + path + ": " + e.what());
    }
    file->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%v", spdlog::pattern_time_type::utc, "\n"));
    file->set_level(spdlog::level::info);
    // Every line is flushed: it is visible to tail -f and survives a crash of the process.
    file->flush_on(spdlog::level::info);
  }
  return std::unique_ptr<EventLog>(new EventLog(std::move(file), std::move(node), clock));
}

EventLog::EventLog(std::shared_ptr<spdlog::logger> file, std::string node, Clock* clock)
    : file_(std::move(file)), node_(std::move(node)), clock_(clock) {}

EventLog::~EventLog() {
  if (file_) file_->flush();
}

void EventLog::Emit(const BusinessEvent& e) {
  if (!file_) return;
  JsonWriter w;
  w.StartObject();
  w.Field("ts", static_cast<int64_t>(clock_->NowMs()));
  w.Field("event", e.event);
  w.Field("node", node_);
  auto opt = [&w](const char* k, const std::string& v) {
    if (!v.empty()) w.Field(k, WellFormed(v));
  };
  opt("tenant", e.tenant);
  opt("user", e.user);
  opt("device", e.device);
  opt("session", e.session);
  opt("remote", e.remote);
  opt("group", e.group);
  opt("reason", e.reason);
  w.EndObject();
  file_->info("{}", w.view());
}

}  // namespace im::internal
