#include "ops/event_log.h"

#include "protocol/json.h"

namespace im::internal {

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path, std::string node,
                                                 Clock* clock) {
  std::FILE* f = nullptr;
  if (!path.empty()) {
    f = std::fopen(path.c_str(), "ae");
    if (f == nullptr) return Status::Unavailable("cannot open event log " + path);
  }
  return std::unique_ptr<EventLog>(new EventLog(f, std::move(node), clock));
}

EventLog::~EventLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void EventLog::Emit(const BusinessEvent& e) {
  if (file_ == nullptr) return;
  JsonWriter w;
  w.StartObject();
  w.Field("ts", static_cast<int64_t>(clock_->NowMs()));
  w.Field("event", e.event);
  w.Field("node", node_);
  auto opt = [&w](const char* k, const std::string& v) {
    if (!v.empty()) w.Field(k, v);
  };
  opt("tenant", e.tenant);
  opt("user", e.user);
  opt("device", e.device);
  opt("session", e.session);
  opt("remote", e.remote);
  opt("group", e.group);
  opt("reason", e.reason);
  w.EndObject();
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(w.view().data(), 1, w.view().size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);  // a line is visible to tail -f and survives a crash of the process
}

}  // namespace im::internal
