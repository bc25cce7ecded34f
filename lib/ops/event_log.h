// The business event log: one JSON object a line (login, logout, kick, login_failed,
// group_created, group_joined, group_quit, message_rejected, slow_consumer_closed) with time,
// node, tenant, user, device, session, remote address and reason. Never a password or a token.
// The file is size-rotated: past max_file_bytes, events.log becomes events.1.log (older ones
// shift up to events.<max_files>.log, the oldest is deleted) and a new events.log starts.
//
// Thread-safety: Emit is safe from any thread.
#ifndef IM_OPS_EVENT_LOG_H_
#define IM_OPS_EVENT_LOG_H_

#include <memory>
#include <string>

#include "im/result.h"
#include "im/types.h"

namespace spdlog {
class logger;
}

namespace im::internal {

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

class EventLog {
 public:
  // Appends to `path` (created when missing). An empty path makes a log that drops everything.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& path, std::string node,
                                                Clock* clock, size_t max_file_bytes,
                                                size_t max_files);
  ~EventLog();
  void Emit(const BusinessEvent& e);

 private:
  EventLog(std::shared_ptr<spdlog::logger> file, std::string node, Clock* clock);
  std::shared_ptr<spdlog::logger> file_;
  const std::string node_;
  Clock* clock_;
};

}  // namespace im::internal

#endif  // IM_OPS_EVENT_LOG_H_
