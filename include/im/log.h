// The library's program log: what the server does and what went wrong (listeners, storage
// errors, slow consumers, drains, reloads), for the people who run it. Business events
// (logins, kicks, ...) go to the separate event log (ServerOptions::event_log_path).
//
// The log is process-wide. Until ConfigureLogging is called it writes `info` and above to
// standard error. Lines look like
//   2026-11-27T16:20:00.123Z info [12345] tcp: listening on 127.0.0.1:7001
// (UTC time, level, thread id, message). A message is always one line: control characters and
// bytes that are not well-formed UTF-8 are written as escapes (\n, \r, \t, \xNN), also to a sink,
// so no string from a client can forge a line. Lines a client can trigger at will (failed
// commands, slow consumers) are rate-limited (docs/operations.md section 5).
//
// Thread-safety: every function is safe from any thread.
#ifndef IM_LOG_H_
#define IM_LOG_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "im/result.h"

namespace im {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  bool console = true;                   // standard error
  std::string file;                      // "" = no file; otherwise size-rotated: when a line
  size_t max_file_bytes = 16 << 20;      // would pass this size, imd.log becomes imd.1.log
  size_t max_files = 4;                  // (imd.1.log imd.2.log, ...); this many old ones kept
};

// Replaces the log's outputs and level. On error (the file cannot be opened) nothing changes.
Status ConfigureLogging(const LogOptions& options);

// Changes the level only (e.g. on a configuration reload).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Sends every line at or above the level to `sink` instead of the configured outputs (a host
// with its own logging). An empty function restores the configured outputs. The sink is called
// from the library's threads and must not block for long.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;
void SetLogSink(LogSink sink);

// "trace", "debug", "info", "warn", "error", "off".
Result<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

}  // namespace im

#endif  // IM_LOG_H_
