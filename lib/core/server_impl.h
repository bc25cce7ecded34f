// Server::Impl: wires the transports, the services (SessionService, ChatService, GroupOps), the
// committer and the timers. Its fronts are thin: the socket commands (handlers.cc,
// group_handlers.cc), the REST endpoints (http_api.cc) and the host API parse, call a service
// and answer.
//
// Threads: `io_threads` run the io_context (sockets, parsing, serialization, timers);
// `worker_threads` run command handlers, one strand per connection so that the commands of a
// connection are handled in order; one committer thread stores and fans out chat messages.
#ifndef IM_CORE_SERVER_IMPL_H_
#define IM_CORE_SERVER_IMPL_H_

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/chat_service.h"
#include "core/committer.h"
#include "core/conn_state.h"
#include "core/group_ops.h"
#include "core/hooks.h"
#include "core/rate_limits.h"
#include "core/session_service.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "ops/rate_limit.h"
#include "im/server.h"
#include "protocol/codec.h"
#include "protocol/json.h"
#include "transport/handler.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im {

class Server::Impl final : public internal::TransportHandler {
 public:
  using ConnState = internal::ConnState;
  using Request = internal::Request;

  Impl(ServerOptions options, ServerDeps deps);
  ~Impl() override;

  Status Start();
  void Stop();
  void Drain(int64_t deadline_ms);

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

  // TransportHandler (io threads).
  // The context of a connection is its ConnState.
  internal::ConnectionContext OnOpen(const std::shared_ptr<Connection>& connection) override;
  void OnFrame(const std::shared_ptr<Connection>& connection,
               const internal::ConnectionContext& context, std::string payload) override;
  void OnClose(const std::shared_ptr<Connection>& connection,
               const internal::ConnectionContext& context) override;
  void OnTraffic(const Connection& connection,
                 const internal::ConnectionContext& context) override;
  void OnSlowConsumer(const Connection& connection, size_t queued_bytes) override;

 private:
  // The socket front (handlers.cc, group_handlers.cc): a table of commands, each parsing its
  // body, calling a service and answering. They run on the connection's strand.
  using Handler = void (Impl::*)(const std::shared_ptr<ConnState>& state,
                                 const std::shared_ptr<Request>& req);
  struct Command {
    const char* name;
    Handler handler;
    bool needs_login;
    bool chat_limits;  // takes a token of chat_connection and chat_user first
  };
  static const Command* FindCommand(const std::string& name);
  void Dispatch(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleLogin(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleLogout(const std::shared_ptr<ConnState>& state,
                    const std::shared_ptr<Request>& req);
  void HandlePing(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleChatSend(const std::shared_ptr<ConnState>& state,
                      const std::shared_ptr<Request>& req);
  void HandleChatSync(const std::shared_ptr<ConnState>& state,
                      const std::shared_ptr<Request>& req);
  void HandleChatAck(const std::shared_ptr<ConnState>& state,
                     const std::shared_ptr<Request>& req);
  void HandleGroupCreate(const std::shared_ptr<ConnState>& state,
                         const std::shared_ptr<Request>& req);
  void HandleGroupInfo(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupJoin(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupQuit(const std::shared_ptr<ConnState>& state,
                       const std::shared_ptr<Request>& req);
  void HandleGroupChange(const std::shared_ptr<ConnState>& state,
                         const std::shared_ptr<Request>& req, bool join);
  void HandleGroupMembers(const std::shared_ptr<ConnState>& state,
                          const std::shared_ptr<Request>& req);
  void ObserveLatency(const Request& req);
  void Reply(ConnState& state, const Request& req, std::string_view body_json);
  void ReplyError(ConnState& state, const Request& req, const Status& status);
  // Forgets the session of a closed or logged-out connection (on its strand).
  void EndSession(ConnState& state, const char* reason = "closed");
  // A host-side send, waited for.
  Result<SendReceipt> SendAndWait(const SessionInfo* sender, std::shared_ptr<Message> message,
                                  const std::string& cid);

  void Shutdown(bool drain, int64_t deadline_ms);
  void ScheduleSweep();
  void Sweep();

  // http_api.cc: the REST front (worker pool; password hashing on hash_pool_).
  struct HttpCaller;
  using Respond = std::function<void(internal::HttpResponse)>;
  void HandleHttp(internal::HttpRequest request, Respond respond);
  void RouteHttp(const internal::HttpRequest& req, Respond respond);
  internal::HttpResponse RouteHttpNow(const internal::HttpRequest& req, Respond& respond);
  Result<HttpCaller> Authenticate(const internal::HttpRequest& req);
  internal::HttpResponse HttpMetrics();
  internal::HttpResponse HttpCreateUser(const internal::HttpRequest& req,
                                        const internal::Fields& f);
  internal::HttpResponse HttpCreateToken(const internal::HttpRequest& req,
                                         const internal::Fields& f);
  void HttpCreateGroup(const HttpCaller& caller, const internal::Fields& f, Respond respond);
  // GET /v1/groups/{gid}/members: the caller's permission, the query, one page.
  internal::HttpResponse HttpGroupMembers(const HttpCaller& caller, const GroupKey& key,
                                          const std::string& target);
  void HttpSendMessage(const HttpCaller& caller, const internal::Fields& f, Respond respond);

  ServerOptions options_;
  ServerDeps deps_;
  Clock* clock_;
  std::string node_id_;
  std::string session_prefix_;
  std::atomic<uint64_t> session_counter_{0};

  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<asio::thread_pool> workers_;
  std::unique_ptr<internal::Committer> committer_;
  // Password hashing (POST /v1/users, /v1/tokens): hash_threads threads; hash_pending_ counts
  // the requests queued or running there, at most hash_threads + hash_queue.
  std::unique_ptr<asio::thread_pool> hash_pool_;
  std::atomic<size_t> hash_pending_{0};
  internal::Hooks hooks_;
  std::unique_ptr<internal::RateLimits> limits_;
  // The services every front calls (made in Start, after the committer).
  std::unique_ptr<internal::SessionService> sessions_;
  std::unique_ptr<internal::ChatService> chat_;
  std::unique_ptr<internal::GroupOps> groups_;
  std::unique_ptr<internal::TcpServer> tcp_;
  std::unique_ptr<internal::WsServer> ws_;
  std::unique_ptr<asio::steady_timer> sweep_timer_;
  internal::ConnRegistry conns_;
  std::atomic<size_t> open_connections_{0};  // admitted by OnOpen, not yet closed
  std::unique_ptr<internal::EventLog> events_;
  internal::Metrics metrics_;
  internal::TransportCounters tcp_counters_;
  internal::TransportCounters ws_counters_;
  TimestampMs last_expire_ms_ = 0;
  Frame token_expired_notice_;  // session.kicked{reason:"token_expired"}
  std::atomic<bool> running_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im

#endif  // IM_CORE_SERVER_IMPL_H_
