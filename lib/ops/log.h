// Internal logging macros over the process-wide program log (im/log.h). The level check is an
// atomic load, so a disabled line costs no formatting:
//   IM_LOG_INFO("tcp: listening on {}", address);
#ifndef IM_OPS_LOG_H_
#define IM_OPS_LOG_H_

#include <fmt/format.h>

#include <atomic>
#include <string>
#include <string_view>

#include "im/log.h"

namespace im::internal {

extern std::atomic<int> g_log_level;  // a LogLevel

inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_log_level.load(std::memory_order_relaxed);
}
// Writes one line. Every message is escaped on the way (EscapeLogText), so no call site can let
// a client's string forge lines or drive a terminal.
void LogWrite(LogLevel level, std::string message);

// A line caused by what a client sent (a command that failed on the server, a slow reader):
// such lines pass a process-wide token bucket of kClientLinesBurst lines refilled at
// kClientLinesPerSecond, so no client can fill the disk or rotate the useful lines away. The
// lines dropped are counted; the next line that passes is preceded by a warn line
// "log: suppressed N client-triggered line(s)".
void LogWriteClient(LogLevel level, std::string message);
constexpr int kClientLinesBurst = 50;
constexpr int kClientLinesPerSecond = 5;
// Fills the bucket and forgets what was dropped (tests start from a known state).
void ResetClientLines();

// `text` with every byte that could end a line or control a terminal escaped: \n, \r, \t, and
// \xNN for the other C0 controls (ESC included), DEL, the C1 controls (U+0080..U+009F) and
// every byte that is not part of well-formed UTF-8. Everything else is kept as is.
std::string EscapeLogText(std::string_view text);

}  // namespace im::internal

// Formats and hands the line to `write` (LogWrite or LogWriteClient) when `level` is enabled.
#define IM_LOG_WITH(write, level, ...)                                         \
  do {                                                                         \
    if (::im::internal::LogEnabled(level)) {                                   \
      ::im::internal::write(level, ::fmt::format(__VA_ARGS__));                \
    }                                                                          \
  } while (0)
#define IM_LOG_AT(level, ...) IM_LOG_WITH(LogWrite, level, __VA_ARGS__)
// For lines a client's input can trigger over and over (see LogWriteClient).
#define IM_LOG_CLIENT_AT(level, ...) IM_LOG_WITH(LogWriteClient, level, __VA_ARGS__)
#define IM_LOG_TRACE(...) IM_LOG_AT(::im::LogLevel::kTrace, __VA_ARGS__)
#define IM_LOG_DEBUG(...) IM_LOG_AT(::im::LogLevel::kDebug, __VA_ARGS__)
#define IM_LOG_INFO(...) IM_LOG_AT(::im::LogLevel::kInfo, __VA_ARGS__)
#define IM_LOG_WARN(...) IM_LOG_AT(::im::LogLevel::kWarn, __VA_ARGS__)
#define IM_LOG_ERROR(...) IM_LOG_AT(::im::LogLevel::kError, __VA_ARGS__)
#define IM_LOG_CLIENT_WARN(...) IM_LOG_CLIENT_AT(::im::LogLevel::kWarn, __VA_ARGS__)
#define IM_LOG_CLIENT_ERROR(...) IM_LOG_CLIENT_AT(::im::LogLevel::kError, __VA_ARGS__)

#endif  // IM_OPS_LOG_H_
