// The business event log: one JSON object a line (login, logout, kick, login_failed,
// group_created, group_joined, group_quit, message_rejected) with time, node, tenant, user,
// device, session, remote address and reason. Never a password or a token.
//
// Thread-safety: Emit is safe from any thread (one mutex around one buffered write per line).
#ifndef IM_OPS_EVENT_LOG_H_
#define IM_OPS_EVENT_LOG_H_

#include <cstdio>
#include <mutex>
#include <string>

#include "im/result.h"
#include "im/types.h"

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
                                                Clock* clock);
  ~EventLog();
  void Emit(const BusinessEvent& e);

 private:
  EventLog(std::FILE* file, std::string node, Clock* clock)
      : file_(file), node_(std::move(node)), clock_(clock) {}
  std::mutex mu_;
  std::FILE* file_;
  const std::string node_;
  Clock* clock_;
};

}  // namespace im::internal

#endif  // IM_OPS_EVENT_LOG_H_
