#include "ops/log.h"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "base/utf8.h"

namespace im {
namespace internal {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};

namespace {

spdlog::level::level_enum ToSpd(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: break;
  }
  return spdlog::level::off;
}

std::shared_ptr<spdlog::logger> MakeLogger(std::vector<spdlog::sink_ptr> sinks) {
  auto logger = std::make_shared<spdlog::logger>("im", sinks.begin(), sinks.end());
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%S.%eZ %l [%t] %v", spdlog::pattern_time_type::utc));
  // Levels are filtered by g_log_level before formatting; the logger passes everything.
  logger->set_level(spdlog::level::trace);
  // Every line reaches the file at once: visible to tail -f, kept if the process crashes next.
  // The log is not on the per-message path (debug and trace lines are per connection).
  logger->flush_on(spdlog::level::trace);
  return logger;
}

struct LogState {
  std::mutex mu;
  std::shared_ptr<spdlog::logger> logger =
      MakeLogger({std::make_shared<spdlog::sinks::stderr_sink_mt>()});
  std::shared_ptr<const LogSink> sink;
};

LogState& State() {
  static LogState* state = new LogState;  // never destroyed: threads may log during exit
  return *state;
}

}  // namespace

std::string EscapeLogText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [&out](unsigned char b) {
    static const char kHex[] = "0123456789abcdef";
    out += "\\x";
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  };
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b >= 0x20 && b < 0x7F) {
      out.push_back(static_cast<char>(b));
      ++i;
    } else if (b == '\n') {
      out += "\\n";
      ++i;
    } else if (b == '\r') {
      out += "\\r";
      ++i;
    } else if (b == '\t') {
      out += "\\t";
      ++i;
    } else if (b < 0x80) {  // the other C0 controls and DEL
      hex(b);
      ++i;
    } else {
      uint32_t cp = 0;
      const size_t len = DecodeUtf8(text, i, &cp);
      if (len == 0) {  // not UTF-8: this byte alone
        hex(b);
        ++i;
      } else if (cp <= 0x9F) {  // a C1 control
        for (size_t k = 0; k < len; ++k) hex(static_cast<unsigned char>(text[i + k]));
        i += len;
      } else {
        out.append(text, i, len);
        i += len;
      }
    }
  }
  return out;
}

namespace {

bool NeedsEscape(std::string_view text) {
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7F) return true;
  }
  return false;
}

// The token bucket of client-triggered lines.
struct ClientLines {
  std::mutex mu;
  double tokens = kClientLinesBurst;
  std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();
  uint64_t suppressed = 0;
};

ClientLines& Clients() {
  static ClientLines* lines = new ClientLines;  // never destroyed, as State()
  return *lines;
}

}  // namespace

void ResetClientLines() {
  ClientLines& cl = Clients();
  std::lock_guard<std::mutex> lock(cl.mu);
  cl.tokens = kClientLinesBurst;
  cl.refilled = std::chrono::steady_clock::now();
  cl.suppressed = 0;
}

void LogWriteClient(LogLevel level, std::string message) {
  ClientLines& cl = Clients();
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(cl.mu);
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - cl.refilled).count();
    cl.tokens = std::min<double>(kClientLinesBurst, cl.tokens + elapsed * kClientLinesPerSecond);
    cl.refilled = now;
    if (cl.tokens < 1) {
      ++cl.suppressed;
      return;
    }
    cl.tokens -= 1;
    suppressed = cl.suppressed;
    cl.suppressed = 0;
  }
  if (suppressed > 0) {
    LogWrite(LogLevel::kWarn,
             "log: suppressed " + std::to_string(suppressed) + " client-triggered line(s)");
  }
  LogWrite(level, std::move(message));
}

void LogWrite(LogLevel level, std::string message) {
  if (NeedsEscape(message)) message = EscapeLogText(message);
  LogState& st = State();
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<const LogSink> sink;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    logger = st.logger;
    sink = st.sink;
  }
  if (sink) return (*sink)(level, message);
  logger->log(ToSpd(level), "{}", message);
}

}  // namespace internal

Status ConfigureLogging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks;
  if (options.console) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!options.file.empty()) {
    if (options.max_file_bytes == 0 || options.max_files == 0) {
      return Status::BadRequest("log max_file_bytes and max_files must be positive");
    }
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file, options.max_file_bytes, options.max_files));
    } catch (const std::exception& e) {
      return Status::Unavailable(std::string("cannot open log file: ") + e.what());
    }
  }
  auto logger = internal::MakeLogger(std::move(sinks));
  internal::LogState& st = internal::State();
  std::shared_ptr<spdlog::logger> old;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    old = std::move(st.logger);
    st.logger = std::move(logger);
  }
  if (old) old->flush();
  SetLogLevel(options.level);
  return Status::OK();
}

void SetLogLevel(LogLevel level) {
  internal::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(internal::g_log_level.load(std::memory_order_relaxed));
}

void SetLogSink(LogSink sink) {
  internal::LogState& st = internal::State();
  std::shared_ptr<const LogSink> p;
  if (sink) p = std::make_shared<const LogSink>(std::move(sink));
  std::lock_guard<std::mutex> lock(st.mu);
  st.sink = std::move(p);
}

Result<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                     LogLevel::kError, LogLevel::kOff}) {
    if (name == LogLevelName(l)) return l;
  }
  return Status::BadRequest("log level must be trace, debug, info, warn, error or off");
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "off";
}

}  // namespace im
