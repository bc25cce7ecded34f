#include "core/server_impl.h"

#include <asio/post.hpp>

#include <chrono>
#include <future>

#include "base/thread_name.h"
#include "ops/log.h"
#include "ops/timed_stores.h"
#include "protocol/json.h"

namespace im {

using internal::ConnState;
using internal::EncodeError;
using internal::Request;

namespace {
std::string Base36(uint64_t v) {
  static const char* kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[v % 36]);
    v /= 36;
  } while (v != 0);
  return s;
}
}  // namespace

Server::Impl::Impl(ServerOptions options, ServerDeps deps)
    : options_(std::move(options)), deps_(std::move(deps)) {
  clock_ = options_.clock ? options_.clock : SystemClock();
  node_id_ = options_.node_id.empty() ? "node-" + std::to_string(options_.node_number)
                                      : options_.node_id;
  // Session ids stay unique across restarts: the start time is part of them.
  session_prefix_ = node_id_ + "." + Base36(static_cast<uint64_t>(clock_->NowMs())) + ".";
  if (!deps_.filter) deps_.filter = NewAllowAllFilter();
  // Every storage call is timed (im_store_duration_seconds{op}).
  deps_.inbox = internal::TimeOfflineQueue(std::move(deps_.inbox), metrics_);
  deps_.groups = internal::TimeGroupService(std::move(deps_.groups), metrics_);
  deps_.users = internal::TimeUserStore(std::move(deps_.users), metrics_);
  deps_.sessions = internal::TimeSessionStore(std::move(deps_.sessions), metrics_);
  token_expired_notice_ =
      Frame::FromString(internal::EncodePush("session.kicked", R"({"reason":"token_expired"})"));
  MakeLimits();
}

Server::Impl::~Impl() { Stop(); }

Status Server::Impl::Start() {
  if (started_) return Status::Error(Code::kConflict, "already_started", "server already started");
  if (stopped_) {
    return Status::Error(Code::kConflict, "stopped", "a stopped server cannot be restarted");
  }
  if (!deps_.sessions || !deps_.router || !deps_.inbox || !deps_.tokens) {
    return Status::BadRequest("ServerDeps needs sessions, router, inbox and tokens");
  }
  if (options_.io_threads < 1 || options_.worker_threads < 1 || options_.hash_threads < 1) {
    return Status::BadRequest("io_threads, worker_threads and hash_threads must be at least 1");
  }
  auto events = internal::EventLog::Open(options_.event_log_path, node_id_, clock_,
                                         options_.event_log_max_file_bytes,
                                         options_.event_log_max_files);
  if (!events.ok()) return events.status();
  events_ = std::move(*events);
  workers_ = std::make_unique<asio::thread_pool>(options_.worker_threads);
  hash_pool_ = std::make_unique<asio::thread_pool>(options_.hash_threads);
  committer_ = std::make_unique<internal::Committer>(internal::Committer::Deps{
      deps_.inbox.get(), deps_.sessions.get(), deps_.router.get(), deps_.groups.get(), clock_,
      options_.node_number, options_.commit_queue_limit, options_.commit_batch_max,
      options_.commit_lane_limit, options_.commit_batch_recipients, options_.fanout_queue_limit,
      options_.fanout_slice, &metrics_});
  if (!options_.tcp_listen.empty()) {
    internal::TcpServerOptions t;
    t.listen = options_.tcp_listen;
    t.max_frame_bytes = options_.max_frame_bytes;
    t.send_queue_bytes = options_.send_queue_bytes;
    t.counters = &tcp_counters_;
    tcp_ = internal::NewTcpServer(io_, t, this);
    Status s = tcp_->Start();
    if (!s.ok()) {
      IM_LOG_ERROR("tcp: cannot listen on {}: {}", t.listen, s.ToString());
      return s;
    }
    IM_LOG_INFO("tcp: listening on port {}", tcp_->port());
  }
  if (!options_.http_listen.empty()) {
    internal::WsServerOptions w;
    w.listen = options_.http_listen;
    w.max_frame_bytes = options_.max_frame_bytes;
    w.send_queue_bytes = options_.send_queue_bytes;
    w.counters = &ws_counters_;
    ws_ = internal::NewWsServer(
        io_, w, this, [this](internal::HttpRequest req, std::function<void(internal::HttpResponse)> r) {
          HandleHttp(std::move(req), std::move(r));
        });
    Status s = ws_->Start();
    if (!s.ok()) {
      IM_LOG_ERROR("http: cannot listen on {}: {}", w.listen, s.ToString());
      return s;
    }
    IM_LOG_INFO("http: listening on port {} (WebSocket at /ws)", ws_->port());
  }
  committer_->Start();
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      internal::NameThisThread("im-io");
      io_.run();
    });
  }
  started_ = true;
  running_ = true;
  last_expire_ms_ = clock_->NowMs();
  sweep_timer_ = std::make_unique<asio::steady_timer>(io_);
  asio::post(io_, [this] { ScheduleSweep(); });
  IM_LOG_INFO("node {} started: {} io thread(s), {} worker thread(s)", node_id_,
              options_.io_threads, options_.worker_threads);
  return Status::OK();
}

void Server::Impl::Stop() { Shutdown(/*drain=*/false, 1000); }

void Server::Impl::Drain(int64_t deadline_ms) { Shutdown(/*drain=*/true, deadline_ms); }

void Server::Impl::Shutdown(bool drain, int64_t deadline_ms) {
  if (!started_) {
    // Start may have failed halfway: nothing runs yet, drop what was built.
    tcp_.reset();
    ws_.reset();
    if (workers_) workers_->join();
    return;
  }
  started_ = false;
  stopped_ = true;
  running_ = false;
  const auto began = std::chrono::steady_clock::now();
  IM_LOG_INFO("{}: {} connection(s), {} queued append(s)", drain ? "draining" : "stopping",
              conns_.Size(), committer_->depth());
  asio::post(io_, [this] { sweep_timer_->cancel(); });
  // From here until the end, the HTTP port answers: /healthz and /readyz with 503 (running_),
  // WebSocket handshakes with 503 (load balancers need an answer, not a refused connection).
  if (ws_) ws_->RefuseHandshakes();
  // Finish the appends already queued while their senders are still connected (they get
  // their acks), refuse new ones; then close every connection.
  committer_->Stop();
  if (drain) {
    // Tell every session to move to another node; its client reconnects and resyncs.
    Frame notice =
        Frame::FromString(internal::EncodePush("session.kicked", R"({"reason":"drain"})"));
    conns_.ForEach([&](const std::shared_ptr<ConnState>& s) {
      if (!s->logged_in.load()) return;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        LogSession("kick", s->session, s->conn->remote_address(), "drain");
      }
      s->conn->Send(notice);
    });
  }
  const char* reason = drain ? "server draining" : "server stopping";
  if (tcp_) tcp_->Stop(close_code::kGoingAway, reason);
  if (ws_) ws_->Stop(close_code::kGoingAway, reason);
  // Let close frames flush and the transports report the closes, for a bounded time.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (conns_.Size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (size_t left = conns_.Size(); left > 0) {
    IM_LOG_WARN("{} connection(s) still open after {} ms; closing them", left, deadline_ms);
  }
  if (ws_) ws_->StopListening();
  workers_->join();
  hash_pool_->join();
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  tcp_.reset();
  ws_.reset();
  sweep_timer_.reset();
  IM_LOG_INFO("{} in {} ms", drain ? "drained" : "stopped",
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - began)
                  .count());
}

void Server::Impl::OnOpen(const std::shared_ptr<Connection>& connection) {
  const bool tcp = connection->transport() == TransportKind::kTcp;
  if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= options_.max_connections) {
    // Over the bound: never registered, so its OnClose finds nothing to forget.
    open_connections_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.ConnectionRefused(!tcp);
    IM_LOG_DEBUG("connection {} from {} refused: {} open (max_connections)", connection->id(),
                 connection->remote_address(), options_.max_connections);
    connection->Close(close_code::kTryAgainLater, "server full");
    return;
  }
  IM_LOG_DEBUG("connection {} opened from {} ({})", connection->id(),
               connection->remote_address(), tcp ? "tcp" : "ws");
  conns_.Add(std::make_shared<ConnState>(connection, *workers_, clock_->NowMs()));
}

void Server::Impl::OnFrame(const std::shared_ptr<Connection>& connection, std::string payload) {
  std::shared_ptr<ConnState> state = conns_.Find(connection->id());
  if (!state) return;
  state->last_seen_ms.store(clock_->NowMs(), std::memory_order_relaxed);
  auto req = std::make_shared<Request>();
  Status s = internal::ParseRequest(payload, req.get());
  if (!s.ok()) {
    // The framing is intact, so the connection stays open; without a cmd there is no id either.
    connection->Send(Frame::FromString(EncodeError(false, 0, "", s)));
    return;
  }
  if (state->pending.load(std::memory_order_relaxed) >= options_.max_pending_commands) {
    connection->Send(Frame::FromString(EncodeError(
        *req, Status::Error(Code::kRateLimited, "rate_limited",
                            "too many commands in flight on this connection"))));
    return;
  }
  state->pending.fetch_add(1, std::memory_order_relaxed);
  asio::post(state->strand, [this, state, req] {
    internal::NameThisThreadOnce("im-worker");
    state->pending.fetch_sub(1, std::memory_order_relaxed);
    Dispatch(state, req);
  });
}

void Server::Impl::OnClose(const std::shared_ptr<Connection>& connection) {
  std::shared_ptr<ConnState> state = conns_.Take(connection->id());
  if (!state) return;
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
  IM_LOG_DEBUG("connection {} closed", connection->id());
  state->closed = true;
  // On the strand, after any command of this connection still running (e.g. a login).
  asio::post(state->strand, [this, state] { EndSession(*state); });
}

void Server::Impl::OnTraffic(const Connection& connection) {
  std::shared_ptr<ConnState> state = conns_.Find(connection.id());
  if (state) state->last_seen_ms.store(clock_->NowMs(), std::memory_order_relaxed);
}

void Server::Impl::OnSlowConsumer(const Connection& connection, size_t queued_bytes) {
  const bool ws = connection.transport() == TransportKind::kWebSocket;
  metrics_.SlowConsumer(ws);
  internal::BusinessEvent e;
  e.event = "slow_consumer_closed";
  if (std::shared_ptr<ConnState> state = conns_.Find(connection.id())) {
    std::lock_guard<std::mutex> lock(state->mu);
    e.tenant = state->session.user.tenant;
    e.user = state->session.user.user;
    e.device = state->session.device;
    e.session = state->session.session_id;
  }
  e.remote = connection.remote_address();
  e.reason = "send queue over " + std::to_string(options_.send_queue_bytes) + " bytes (" +
             std::to_string(queued_bytes) + " queued)";
  events_->Emit(e);
  IM_LOG_CLIENT_WARN("slow consumer: closing connection {} ({} user '{}') with {} bytes queued",
                     connection.id(), connection.remote_address(), e.user, queued_bytes);
}

void Server::Impl::LogSession(const char* event, const SessionInfo& s, const std::string& remote,
                              const std::string& reason) {
  internal::BusinessEvent e;
  e.event = event;
  e.tenant = s.user.tenant;
  e.user = s.user.user;
  e.device = s.device;
  e.session = s.session_id;
  e.remote = remote;
  e.reason = reason;
  events_->Emit(e);
  if (std::string_view(event) == "kick") metrics_.Kick(reason);
}

void Server::Impl::EndSession(ConnState& state, const char* reason) {
  if (!state.logged_in.exchange(false)) return;
  SessionInfo session;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    session = state.session;
  }
  deps_.router->Detach(session);
  // Compare-and-delete: a kicked connection never removes the session that replaced it.
  (void)deps_.sessions->Remove(session);
  LogSession("logout", session, state.conn->remote_address(), reason);
  if (on_logout_) on_logout_(session);
}

void Server::Impl::ScheduleSweep() {
  if (!running_) return;
  sweep_timer_->expires_after(std::chrono::milliseconds(options_.sweep_interval_ms));
  sweep_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec || !running_) return;
    Sweep();
    ScheduleSweep();
  });
}

void Server::Impl::Sweep() {
  TimestampMs now = clock_->NowMs();
  const int64_t idle_ms = int64_t{options_.heartbeat_s} * 3 * 1000;
  conns_.ForEach([&](const std::shared_ptr<ConnState>& s) {
    if (!s->logged_in.load()) {
      if (now - s->opened_ms > options_.login_timeout_ms) {
        s->conn->Close(close_code::kUnauthenticated, "login timeout");
      }
    } else if (TimestampMs exp = s->token_expires_ms.load(); exp > 0 && now > exp + options_.token_grace_ms) {
      // The token ran out and no fresh login came: the client must get a new token.
      if (!s->closed.load()) {
        std::lock_guard<std::mutex> lock(s->mu);
        LogSession("kick", s->session, s->conn->remote_address(), "token_expired");
      }
      s->conn->Send(token_expired_notice_);
      s->conn->Close(close_code::kUnauthenticated, "token expired");
    } else if (now - s->last_seen_ms.load(std::memory_order_relaxed) > idle_ms) {
      // No traffic for three heartbeats: a half-open socket or a dead client.
      s->conn->Close(close_code::kNormal, "heartbeat timeout");
    }
  });
  if (options_.retention_sweep_ms > 0 && now - last_expire_ms_ >= options_.retention_sweep_ms) {
    last_expire_ms_ = now;
    asio::post(*workers_, [this, now] {
      Result<size_t> removed = deps_.inbox->Expire(now);
      if (!removed.ok()) {
        IM_LOG_ERROR("retention sweep failed: {}", removed.status().ToString());
      } else if (*removed > 0) {
        IM_LOG_INFO("retention sweep removed {} inbox entries", *removed);
      }
    });
  }
}


Result<SendReceipt> Server::Impl::SendToUser(const UserKey& to, const std::string& from,
                                             std::string body, std::string type,
                                             std::string cid) {
  if (!running_) return Status::Unavailable("server not running");
  auto message = std::make_shared<Message>();
  message->tenant = to.tenant;
  message->from = from;
  message->to = to.user;
  message->type = std::move(type);
  message->body = std::move(body);
  auto promise = std::make_shared<std::promise<Result<SendReceipt>>>();
  auto future = promise->get_future();
  SessionInfo sender;
  sender.user = UserKey{to.tenant, from};
  Status s = SubmitDirect(from.empty() ? nullptr : &sender, std::move(message), cid,
                          [promise](const Result<SendReceipt>& r) { promise->set_value(r); });
  if (!s.ok()) return s;
  return future.get();
}

Result<SendReceipt> Server::Impl::SendToGroup(const GroupKey& group, const std::string& from,
                                              std::string body, std::string type,
                                              std::string cid) {
  if (!running_) return Status::Unavailable("server not running");
  auto message = std::make_shared<Message>();
  message->tenant = group.tenant;
  message->from = from;
  message->group = group.gid;
  message->type = std::move(type);
  message->body = std::move(body);
  auto promise = std::make_shared<std::promise<Result<SendReceipt>>>();
  auto future = promise->get_future();
  Status s = SubmitDirect(nullptr, std::move(message), cid,
                          [promise](const Result<SendReceipt>& r) { promise->set_value(r); });
  if (!s.ok()) return s;
  return future.get();
}

Status Server::Impl::Kick(const UserKey& user) {
  Result<std::vector<SessionInfo>> found = deps_.sessions->Find(user);
  if (!found.ok()) return found.status();
  internal::JsonWriter w;
  w.StartObject();
  w.Field("reason", "admin");
  w.EndObject();
  Frame notice = Frame::FromString(internal::EncodePush("session.kicked", w.view()));
  for (const SessionInfo& s : *found) {
    LogSession("kick", s, "", "admin");
    deps_.router->Close(s, notice, close_code::kKicked, "kicked by admin");
  }
  return Status::OK();
}

size_t Server::Impl::OnlineCount() const { return deps_.router->LocalCount(); }

// ---- The public facade ----

Server::Server(ServerOptions options, ServerDeps deps)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(deps))) {}
Server::~Server() = default;
Status Server::Start() { return impl_->Start(); }
void Server::Stop() { impl_->Stop(); }
void Server::Drain(int64_t deadline_ms) { impl_->Drain(deadline_ms); }
uint16_t Server::tcp_port() const { return impl_->tcp_port(); }
uint16_t Server::http_port() const { return impl_->http_port(); }
const std::string& Server::node_id() const { return impl_->node_id(); }
Result<SendReceipt> Server::SendToUser(const UserKey& to, const std::string& from,
                                       std::string body, std::string type, std::string cid) {
  return impl_->SendToUser(to, from, std::move(body), std::move(type), std::move(cid));
}
Result<SendReceipt> Server::SendToGroup(const GroupKey& group, const std::string& from,
                                        std::string body, std::string type, std::string cid) {
  return impl_->SendToGroup(group, from, std::move(body), std::move(type), std::move(cid));
}
Status Server::Kick(const UserKey& user) { return impl_->Kick(user); }
size_t Server::OnlineCount() const { return impl_->OnlineCount(); }
void Server::SetBeforeSend(BeforeSendHook hook) { impl_->before_send_ = std::move(hook); }
void Server::SetOnLogin(SessionHook hook) { impl_->on_login_ = std::move(hook); }
void Server::SetOnLogout(SessionHook hook) { impl_->on_logout_ = std::move(hook); }

}  // namespace im
