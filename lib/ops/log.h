// Internal logging macros over the process-wide program log (im/log.h). The level check is an
// atomic load, so a disabled line costs no formatting:
//   IM_LOG_INFO("tcp: listening on {}", address);
#ifndef IM_OPS_LOG_H_
#define IM_OPS_LOG_H_

#include <fmt/format.h>

#include <atomic>
#include <string>

#include "im/log.h"

namespace im::internal {

extern std::atomic<int> g_log_level;  // a LogLevel

inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_log_level.load(std::memory_order_relaxed);
}
void LogWrite(LogLevel level, std::string message);

}  // namespace im::internal

#define IM_LOG_AT(level, ...)                                                  \
  do {                                                                         \
    if (::im::internal::LogEnabled(level)) {                                   \
      ::im::internal::LogWrite(level, ::fmt::format(__VA_ARGS__));             \
    }                                                                          \
  } while (0)
#define IM_LOG_TRACE(...) IM_LOG_AT(::im::LogLevel::kTrace, __VA_ARGS__)
#define IM_LOG_DEBUG(...) IM_LOG_AT(::im::LogLevel::kDebug, __VA_ARGS__)
#define IM_LOG_INFO(...) IM_LOG_AT(::im::LogLevel::kInfo, __VA_ARGS__)
#define IM_LOG_WARN(...) IM_LOG_AT(::im::LogLevel::kWarn, __VA_ARGS__)
#define IM_LOG_ERROR(...) IM_LOG_AT(::im::LogLevel::kError, __VA_ARGS__)

#endif  // IM_OPS_LOG_H_
