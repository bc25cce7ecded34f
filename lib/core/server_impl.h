// Server::Impl: wires the transports, the services (SessionService, ChatService, GroupOps), the
// fronts that call them (SocketFront for the socket commands, HttpFront for the REST
// endpoints, and the host API here), the committer and the timers, and runs the lifecycle.
//
// Threads: `io_threads` run the io_context (sockets, parsing, serialization, timers);
// `worker_threads` run command handlers, in each connection's turns (SocketFront) so that the
// commands of a connection are handled in order; one committer thread sequences and stores chat messages and
// one fan-out thread pushes them (core/committer.h).
#ifndef IM_CORE_SERVER_IMPL_H_
#define IM_CORE_SERVER_IMPL_H_

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/chat_service.h"
#include "core/committer.h"
#include "core/group_ops.h"
#include "core/hooks.h"
#include "core/http_front.h"
#include "core/push_catch_up.h"
#include "core/rate_limits.h"
#include "core/session_service.h"
#include "core/socket_front.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "ops/rate_limit.h"
#include "tenant/tenant_directory.h"
#include "im/server.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im {

class Server::Impl final {
 public:
  Impl(ServerOptions options, ServerDeps deps);
  ~Impl();

  Status Start();
  void Stop();
  void Drain(int64_t deadline_ms);
  bool DrainSessions(int64_t deadline_ms);
  size_t KickForDrain(size_t max, const std::function<bool(const UserKey&)>& select);
  size_t DrainableCount() const;

  uint16_t tcp_port() const { return tcp_ ? tcp_->port() : 0; }
  uint16_t http_port() const { return ws_ ? ws_->port() : 0; }
  const std::string& node_id() const { return node_id_; }

  // Host API: blocks the caller until the message is stored (or refused).
  Result<SendReceipt> SendToUser(const UserKey& to, const std::string& from, std::string body,
                                 std::string type, std::string cid);
  Result<SendReceipt> SendToGroup(const GroupKey& group, const std::string& from,
                                  std::string body, std::string type, std::string cid);
  Status Kick(const UserKey& user);
  size_t OnlineCount() const;

  void SetBeforeSend(BeforeSendHook hook) { hooks_.before_send = std::move(hook); }
  void SetOnLogin(SessionHook hook) { hooks_.on_login = std::move(hook); }
  void SetOnLogout(SessionHook hook) { hooks_.on_logout = std::move(hook); }

 private:
  // A host-side send, waited for.
  Result<SendReceipt> SendAndWait(const SessionInfo* sender, std::shared_ptr<Message> message,
                                  const std::string& cid);
  void Shutdown(bool drain, int64_t deadline_ms);
  // Drain kicks, drain_kicks_per_second at most, until no session is left (true) or `deadline`.
  bool KickInBatches(std::chrono::steady_clock::time_point deadline);
  void ScheduleSweep();
  void Sweep();

  ServerOptions options_;
  ServerDeps deps_;
  Clock* clock_;
  std::string node_id_;
  std::string session_prefix_;

  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<asio::thread_pool> workers_;
  std::unique_ptr<internal::Committer> committer_;
  // Password hashing (POST /v1/users, /v1/tokens): hash_threads threads.
  std::unique_ptr<asio::thread_pool> hash_pool_;
  internal::Hooks hooks_;
  std::unique_ptr<internal::TenantDirectory> tenants_;
  std::unique_ptr<internal::RateLimits> limits_;
  // The services every front calls (made in Start, after the committer).
  std::unique_ptr<internal::SessionService> sessions_;
  std::unique_ptr<internal::ChatService> chat_;
  std::unique_ptr<internal::GroupOps> groups_;
  // The fronts: socket commands (the transports' handler) and the REST endpoints.
  std::unique_ptr<internal::SocketFront> socket_front_;
  std::unique_ptr<internal::HttpFront> http_front_;
  std::unique_ptr<internal::TcpServer> tcp_;
  std::unique_ptr<internal::WsServer> ws_;
  std::unique_ptr<asio::steady_timer> sweep_timer_;
  // Cluster mode (a BroadcastRouter): the newest message pushed again to every connected user
  // when the router subscribed again (checked by the sweep); the subscriptions seen so far.
  internal::BroadcastRouter* broadcast_ = nullptr;
  std::unique_ptr<internal::PushCatchUp> catch_up_;
  uint64_t subscriptions_seen_ = 0;
  std::unique_ptr<internal::EventLog> events_;
  internal::Metrics metrics_;
  internal::TransportCounters tcp_counters_;
  internal::TransportCounters ws_counters_;
  TimestampMs last_expire_ms_ = 0;
  TimestampMs last_tenant_refresh_ms_ = 0;
  std::atomic<bool> tenant_refreshing_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> draining_{false};  // DrainSessions began: /readyz answers 503
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im

#endif  // IM_CORE_SERVER_IMPL_H_
