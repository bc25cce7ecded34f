// The core's services (SessionService, ChatService, GroupOps) wired as the server wires them,
// on memory backends, a real Committer and an event log in a temporary directory; no socket.
#ifndef IM_TESTS_UNIT_SERVICE_WORLD_H_
#define IM_TESTS_UNIT_SERVICE_WORLD_H_

#include <doctest/doctest.h>

#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/chat_service.h"
#include "core/committer.h"
#include "core/group_ops.h"
#include "core/hooks.h"
#include "core/rate_limits.h"
#include "core/session_service.h"
#include "im/auth.h"
#include "im/backends.h"
#include "im/content_filter.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "support/fake_connection.h"
#include "support/temp_dir.h"
#include "tenant/tenant_directory.h"

namespace im::test {

class ServiceWorld {
 public:
  // `customize` may change the options (kick policy, limits) before anything is built.
  explicit ServiceWorld(std::function<void(ServerOptions&)> customize = nullptr,
                        std::shared_ptr<ContentFilter> filter = nullptr) {
    if (customize) customize(options);
    filter_ = filter ? std::move(filter) : std::shared_ptr<ContentFilter>(NewAllowAllFilter());
    tokens_ = NewHs256Verifier(keys_);
    auto events = internal::EventLog::Open(events_path_, "node-1", SystemClock(), 1 << 20, 1);
    REQUIRE(events.ok());
    events_ = std::move(*events);
    limits_ = std::make_unique<internal::RateLimits>(options, SystemClock(), &metrics_, &tenants);
    committer_ = std::make_unique<internal::Committer>(internal::Committer::Deps{
        inbox.get(), sessions_store.get(), router.get(), groups_store.get(), SystemClock(), 1,
        1000, 64});
    committer_->Start();
    sessions = std::make_unique<internal::SessionService>(internal::SessionService::Deps{
        sessions_store.get(), router.get(), inbox.get(), tokens_.get(), limits_.get(),
        events_.get(), &metrics_, &hooks, &options, SystemClock(), "node-1", "node-1.t.",
        &tenants});
    chat = std::make_unique<internal::ChatService>(internal::ChatService::Deps{
        inbox.get(), groups_store.get(), committer_.get(), filter_.get(), limits_.get(),
        events_.get(), &metrics_, &hooks, &options});
    groups = std::make_unique<internal::GroupOps>(internal::GroupOps::Deps{
        groups_store.get(), committer_.get(), filter_.get(), events_.get(), SystemClock(),
        &tenants, limits_.get()});
  }
  ~ServiceWorld() { committer_->Stop(); }

  std::string Token(const std::string& user, int64_t ttl_s = 3600) {
    Result<std::string> t = SignHs256Token(*keys_, UserKey{"default", user}, ttl_s,
                                           SystemClock()->NowMs());
    REQUIRE(t.ok());
    return *t;
  }

  // A login of `user` on `device` over a new fake connection (REQUIREd to succeed).
  internal::SessionService::LoginResult Login(const std::string& user,
                                              const std::string& device,
                                              std::shared_ptr<FakeConnection>* conn = nullptr) {
    auto c = std::make_shared<FakeConnection>(++next_connection_);
    internal::SessionService::LoginRequest req;
    req.token = Token(user);
    req.device = device;
    req.remote_address = "127.0.0.1:1";
    req.connection = c;
    auto r = sessions->Login(req);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    if (conn) *conn = c;
    return *r;
  }

  // A send waited for (the committer's answer, or Send's own refusal).
  Result<SendReceipt> SendWait(const SessionInfo* sender, std::shared_ptr<Message> m,
                               const std::string& cid = "") {
    return chat->SendAndWait(sender, std::move(m), cid);
  }

  internal::EventLog* events() { return events_.get(); }
  internal::Metrics* metrics() { return &metrics_; }
  internal::RateLimits* limits() { return limits_.get(); }

  // Every line of the business event log so far.
  std::vector<std::string> Events() const {
    events_->Flush();  // the writer thread writes them
    std::vector<std::string> lines;
    std::ifstream in(events_path_);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  ServerOptions options;
  internal::Hooks hooks;
  std::shared_ptr<SessionStore> sessions_store = NewMemorySessionStore();
  std::shared_ptr<Router> router = NewLocalRouter();
  std::shared_ptr<OfflineQueue> inbox = NewMemoryOfflineQueue();
  std::shared_ptr<GroupService> groups_store = NewMemoryGroupService();
  internal::TenantDirectory tenants{NewMemoryTenantStore()};

 private:
  TempDir dir_;
  const std::string events_path_ = dir_.path() + "/events.log";
  std::shared_ptr<KeyStore> keys_ =
      NewStaticKeyStore({{"default", "0123456789abcdef0123456789abcdef"}});
  std::unique_ptr<TokenVerifier> tokens_;
  std::shared_ptr<ContentFilter> filter_;
  internal::Metrics metrics_;
  std::unique_ptr<internal::EventLog> events_;
  std::unique_ptr<internal::RateLimits> limits_;
  std::unique_ptr<internal::Committer> committer_;
  uint64_t next_connection_ = 0;

 public:
  std::unique_ptr<internal::SessionService> sessions;
  std::unique_ptr<internal::ChatService> chat;
  std::unique_ptr<internal::GroupOps> groups;
};

// Counts the event log lines that contain every one of `parts`.
inline size_t CountEvents(const std::vector<std::string>& lines,
                          const std::vector<std::string>& parts) {
  size_t n = 0;
  for (const std::string& line : lines) {
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

}  // namespace im::test

#endif  // IM_TESTS_UNIT_SERVICE_WORLD_H_
