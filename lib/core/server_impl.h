// Server::Impl: wires transports, the command handlers, the committer and the timers.
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
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/committer.h"
#include "core/conn_state.h"
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

  Result<SendReceipt> SendToUser(const UserKey& to, const std::string& from, std::string body,
                                 std::string type, std::string cid);
  Result<SendReceipt> SendToGroup(const GroupKey& group, const std::string& from,
                                  std::string body, std::string type, std::string cid);
  Status Kick(const UserKey& user);
  size_t OnlineCount() const;

  BeforeSendHook before_send_;
  SessionHook on_login_;
  SessionHook on_logout_;

  // TransportHandler (io threads).
  void OnOpen(const std::shared_ptr<Connection>& connection) override;
  void OnFrame(const std::shared_ptr<Connection>& connection, std::string payload) override;
  void OnClose(const std::shared_ptr<Connection>& connection) override;
  void OnTraffic(const Connection& connection) override;
  void OnSlowConsumer(const Connection& connection, size_t queued_bytes) override;

 private:
  // handlers.cc (worker strands).
  void Dispatch(const std::shared_ptr<ConnState>& state, const std::shared_ptr<Request>& req);
  void HandleLogin(const std::shared_ptr<ConnState>& state, const Request& req);
  void HandleLogout(const std::shared_ptr<ConnState>& state, const Request& req);
  void HandlePing(const std::shared_ptr<ConnState>& state, const Request& req);
  void HandleChatSend(const std::shared_ptr<ConnState>& state,
                      const std::shared_ptr<Request>& req);
  void HandleChatSync(const std::shared_ptr<ConnState>& state, const Request& req);
  void HandleChatAck(const std::shared_ptr<ConnState>& state, const Request& req);
  // group_handlers.cc
  void HandleGroupCreate(const std::shared_ptr<ConnState>& state,
                         const std::shared_ptr<Request>& req);
  void HandleGroupInfo(const std::shared_ptr<ConnState>& state, const Request& req);
  void HandleGroupJoinQuit(const std::shared_ptr<ConnState>& state,
                           const std::shared_ptr<Request>& req, bool join);
  void HandleGroupMembers(const std::shared_ptr<ConnState>& state, const Request& req);
  void AppendGroupEvent(internal::Committer& committer, const GroupKey& group,
                        const std::string& actor, const std::string& event,
                        const std::vector<std::string>& members);
  // Validates and stores `message` (to `message->to`), then calls `done` (committer thread).
  Status SubmitDirect(const SessionInfo* sender, std::shared_ptr<Message> message,
                      const std::string& cid,
                      std::function<void(const Result<SendReceipt>&)> done);
  std::string LoginBody(const SessionInfo& session, const InboxInfo& inbox, uint64_t acked);
  void ObserveLatency(const Request& req);
  void Reply(ConnState& state, const Request& req, std::string_view body_json);
  void ReplyError(ConnState& state, const Request& req, const Status& status);
  // Forgets the session of a closed or logged-out connection (compare-and-delete).
  void EndSession(ConnState& state, const char* reason = "closed");
  void LogSession(const char* event, const SessionInfo& s, const std::string& remote,
                  const std::string& reason);

  void Shutdown(bool drain, int64_t deadline_ms);
  void ScheduleSweep();
  void Sweep();

  // rate_limits.cc: the server's rate limits (ServerOptions' login_*, register_*, chat_*).
  struct LimitKey {
    internal::RateLimiter* limiter;
    internal::Metrics::Limit limit;
    std::string key;
  };
  void MakeLimits();
  // Takes a token from each bucket in order. When one is empty: gives back the tokens taken,
  // counts the refusal under that limit and returns 429 rate_limited with the longest wait.
  Status TakeLimits(std::initializer_list<LimitKey> keys);
  void RefundLimits(std::initializer_list<LimitKey> keys);
  // 429 when `key`'s bucket is empty now (taking nothing), counted under its limit.
  Status PeekLimit(const LimitKey& key);
  LimitKey LoginAddress(const std::string& remote_address);
  LimitKey LoginAccount(const std::string& tenant, const std::string& user);
  LimitKey RegisterAddress(const std::string& remote_address);

  // http_api.cc (REST; worker pool, password hashing on hash_pool_).
  struct HttpCaller;
  void HandleHttp(internal::HttpRequest request,
                  std::function<void(internal::HttpResponse)> respond);
  internal::HttpResponse RouteHttp(const internal::HttpRequest& req);
  Result<HttpCaller> Authenticate(const internal::HttpRequest& req);
  internal::HttpResponse HttpCreateUser(const internal::HttpRequest& req,
                                        const internal::Fields& f);
  internal::HttpResponse HttpCreateToken(const internal::HttpRequest& req,
                                         const internal::Fields& f);
  internal::HttpResponse HttpCreateGroup(const HttpCaller& caller, const internal::Fields& f);
  // GET /v1/groups/{gid}/members: the caller's permission, the query, one page.
  internal::HttpResponse HttpGroupMembers(const HttpCaller& caller, const GroupKey& key,
                                          const std::string& target);
  internal::HttpResponse HttpSendMessage(const HttpCaller& caller, const internal::Fields& f);

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
  std::unique_ptr<internal::RateLimiter> login_address_limit_;
  std::unique_ptr<internal::RateLimiter> login_account_limit_;
  std::unique_ptr<internal::RateLimiter> register_address_limit_;
  std::unique_ptr<internal::RateLimiter> chat_connection_limit_;
  std::unique_ptr<internal::RateLimiter> chat_user_limit_;
  std::unique_ptr<internal::TcpServer> tcp_;
  std::unique_ptr<internal::WsServer> ws_;
  std::unique_ptr<asio::steady_timer> sweep_timer_;
  internal::ConnRegistry conns_;
  std::atomic<size_t> open_connections_{0};  // admitted by OnOpen, not yet closed
  std::unique_ptr<internal::EventLog> events_;
  internal::Metrics metrics_;
  internal::TransportCounters tcp_counters_;
  internal::TransportCounters ws_counters_;
  internal::MidGenerator group_ids_{0};  // generated gids: "g" + a time-ordered id
  TimestampMs last_expire_ms_ = 0;
  Frame token_expired_notice_;  // session.kicked{reason:"token_expired"}
  std::atomic<bool> running_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im

#endif  // IM_CORE_SERVER_IMPL_H_
