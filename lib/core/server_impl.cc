#include "core/server_impl.h"

#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "base/thread_name.h"
#include "ops/log.h"
#include "ops/timed_stores.h"
#include "protocol/json.h"
#include "route/broadcast_router.h"
#include "route/local_router.h"

namespace im {

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

// A message of the host API from `from` in `tenant`, without its recipient.
std::shared_ptr<Message> HostMessage(const std::string& tenant, const std::string& from,
                                     std::string body, std::string type) {
  auto message = std::make_shared<Message>();
  message->tenant = tenant;
  message->from = from;
  message->type = std::move(type);
  message->body = std::move(body);
  return message;
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
  if (!deps_.tenants) deps_.tenants = NewMemoryTenantStore();
  tenants_ = std::make_unique<internal::TenantDirectory>(deps_.tenants);
  // Every check of content (messages, group names) adds the sender tenant's own words.
  deps_.filter = internal::NewTenantFilter(std::move(deps_.filter), tenants_.get());
  metrics_.SetMaxTenantLabels(options_.metrics_max_tenants);
  // Every storage call is timed (im_store_duration_seconds{op}).
  deps_.inbox = internal::TimeOfflineQueue(std::move(deps_.inbox), metrics_);
  deps_.groups = internal::TimeGroupService(std::move(deps_.groups), metrics_);
  deps_.users = internal::TimeUserStore(std::move(deps_.users), metrics_);
  deps_.sessions = internal::TimeSessionStore(std::move(deps_.sessions), metrics_);
  limits_ = std::make_unique<internal::RateLimits>(options_, clock_, &metrics_, tenants_.get());
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
                                         options_.event_log_max_files,
                                         {options_.event_log_queue, &metrics_});
  if (!events.ok()) return events.status();
  events_ = std::move(*events);
  // The registry as it is now, before the first login is checked against it.
  if (Status s = tenants_->Refresh(); !s.ok()) {
    IM_LOG_ERROR("tenant registry not read (every tenant counts as active): {}", s.ToString());
  }
  workers_ = std::make_unique<asio::thread_pool>(options_.worker_threads);
  hash_pool_ = std::make_unique<asio::thread_pool>(options_.hash_threads);
  committer_ = std::make_unique<internal::Committer>(internal::Committer::Deps{
      deps_.inbox.get(), deps_.sessions.get(), deps_.router.get(), deps_.groups.get(), clock_,
      options_.node_number, options_.commit_queue_limit, options_.commit_batch_max,
      options_.commit_lane_limit, options_.commit_batch_recipients, options_.fanout_queue_limit,
      options_.fanout_slice, &metrics_, options_.commit_inflight, tenants_.get(),
      options_.thread_slice_us});
  sessions_ = std::make_unique<internal::SessionService>(internal::SessionService::Deps{
      deps_.sessions.get(), deps_.router.get(), deps_.inbox.get(), deps_.tokens.get(),
      limits_.get(), events_.get(), &metrics_, &hooks_, &options_, clock_, node_id_,
      session_prefix_, tenants_.get()});
  chat_ = std::make_unique<internal::ChatService>(internal::ChatService::Deps{
      deps_.inbox.get(), deps_.groups.get(), committer_.get(), deps_.filter.get(), limits_.get(),
      events_.get(), &metrics_, &hooks_, &options_, tenants_.get(), clock_});
  groups_ = std::make_unique<internal::GroupOps>(internal::GroupOps::Deps{
      deps_.groups.get(), committer_.get(), deps_.filter.get(), events_.get(), clock_,
      tenants_.get(), limits_.get()});
  socket_front_ = std::make_unique<internal::SocketFront>(internal::SocketFront::Deps{
      &options_, clock_, workers_.get(), sessions_.get(), chat_.get(), groups_.get(),
      events_.get(), &metrics_, tenants_.get(), limits_.get()});
  http_front_ = std::make_unique<internal::HttpFront>(internal::HttpFront::Deps{
      &options_, &deps_, clock_, workers_.get(), hash_pool_.get(), chat_.get(), groups_.get(),
      limits_.get(), &metrics_, &running_, &draining_, tenants_.get(), [this] {
        internal::Metrics::Snapshot s;
        socket_front_->AddToSnapshot(s);
        s.commit_queue_depth = static_cast<double>(committer_->depth());
        s.deliveries_total = static_cast<double>(committer_->deliveries());
        s.tcp_bytes_in = static_cast<double>(tcp_counters_.bytes_in.load());
        s.tcp_bytes_out = static_cast<double>(tcp_counters_.bytes_out.load());
        s.ws_bytes_in = static_cast<double>(ws_counters_.bytes_in.load());
        s.http_refused = static_cast<double>(ws_counters_.refused.load());
        s.ws_bytes_out = static_cast<double>(ws_counters_.bytes_out.load());
        return s;
      }});
  if (!options_.tcp_listen.empty()) {
    internal::TcpServerOptions t;
    t.listen = options_.tcp_listen;
    t.max_frame_bytes = options_.max_frame_bytes;
    t.send_queue_bytes = options_.send_queue_bytes;
    t.counters = &tcp_counters_;
    t.one_io_thread = options_.io_threads == 1;
    tcp_ = internal::NewTcpServer(io_, t, socket_front_.get());
    Status s = tcp_->Start();
    if (!s.ok()) return s;  // the caller reports it (logged here too, it was printed twice)
    IM_LOG_INFO("tcp: listening on port {}", tcp_->port());
  }
  if (!options_.http_listen.empty()) {
    internal::WsServerOptions w;
    w.listen = options_.http_listen;
    w.max_frame_bytes = options_.max_frame_bytes;
    w.send_queue_bytes = options_.send_queue_bytes;
    w.counters = &ws_counters_;
    w.max_pending = options_.max_http_connections;
    ws_ = internal::NewWsServer(
        io_, w, socket_front_.get(),
        [this](internal::HttpRequest req, std::function<void(internal::HttpResponse)> r) {
          http_front_->HandleHttp(std::move(req), std::move(r));
        });
    Status s = ws_->Start();
    if (!s.ok()) return s;  // the caller reports it (logged here too, it was printed twice)
    IM_LOG_INFO("http: listening on port {} (WebSocket at /ws)", ws_->port());
  }
  broadcast_ = dynamic_cast<internal::BroadcastRouter*>(deps_.router.get());
  if (broadcast_ != nullptr) {
    catch_up_ = std::make_unique<internal::PushCatchUp>(internal::PushCatchUp::Deps{
        deps_.inbox.get(), &broadcast_->local(), workers_.get(),
        [this](const Connection& c, const std::string& epoch) {
          return socket_front_->MoveIfEpochStale(c.id(), epoch);
        }});
    subscriptions_seen_ = broadcast_->subscriptions();
  }
  committer_->Start();
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      internal::SetUpThisThread("im-io", options_.thread_slice_us);
      io_.run();
    });
  }
  started_ = true;
  running_ = true;
  last_expire_ms_ = clock_->NowMs();
  sweep_timer_ = std::make_unique<asio::steady_timer>(io_);
  asio::post(io_, [this] { ScheduleSweep(); });
  IM_LOG_INFO("node {} started: {} io thread(s), {} worker thread(s), {}", node_id_,
              options_.io_threads, options_.worker_threads,
              options_.commit_on_worker ? "a lone 1:1 send stored on its worker"
                                        : "every send stored on im-commit");
  return Status::OK();
}

void Server::Impl::Stop() { Shutdown(/*drain=*/false, 1000); }

void Server::Impl::Drain(int64_t deadline_ms) { Shutdown(/*drain=*/true, deadline_ms); }

bool Server::Impl::DrainSessions(int64_t deadline_ms) {
  if (!started_) return true;
  if (!draining_.exchange(true)) {
    IM_LOG_INFO("draining {} session(s), at most {} kicks a second",
                socket_front_->DrainableCount(), options_.drain_kicks_per_second);
    socket_front_->SetDraining();
    if (ws_) ws_->RefuseHandshakes();
  }
  return KickInBatches(std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms));
}

bool Server::Impl::KickInBatches(std::chrono::steady_clock::time_point deadline) {
  // Batches every 100 ms or more: a tenth of the rate each, at least one session.
  const int64_t rate = options_.drain_kicks_per_second;
  const size_t batch = rate <= 0 ? SIZE_MAX : static_cast<size_t>(std::max<int64_t>(1, rate / 10));
  const auto interval = std::chrono::milliseconds(
      rate <= 0 ? 0 : static_cast<int64_t>(batch) * 1000 / rate);
  for (;;) {
    const auto next = std::chrono::steady_clock::now() + interval;
    socket_front_->KickForDrain(batch, nullptr);
    if (socket_front_->DrainableCount() == 0) return true;
    if (next >= deadline) return false;
    std::this_thread::sleep_until(std::max(next, std::chrono::steady_clock::now() +
                                                     std::chrono::milliseconds(5)));
  }
}

size_t Server::Impl::KickForDrain(size_t max,
                                  const std::function<bool(const UserKey&)>& select) {
  return started_ ? socket_front_->KickForDrain(max, select) : 0;
}

size_t Server::Impl::DrainableCount() const {
  return started_ ? socket_front_->DrainableCount() : 0;
}

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
  if (drain) {
    // A new login gets 503 draining (with retry_after_ms), as in a drain by command.
    draining_ = true;
    socket_front_->SetDraining();
  }
  const auto began = std::chrono::steady_clock::now();
  IM_LOG_INFO("{}: {} connection(s), {} queued append(s)", drain ? "draining" : "stopping",
              socket_front_->ConnectionCount(), committer_->depth());
  asio::post(io_, [this] { sweep_timer_->cancel(); });
  // From here until the end, the HTTP port answers: /healthz and /readyz with 503 (running_),
  // WebSocket handshakes with 503 (load balancers need an answer, not a refused connection).
  if (ws_) ws_->RefuseHandshakes();
  // Finish the appends already queued while their senders are still connected (they get
  // their acks), refuse new ones; then close every connection.
  committer_->Stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  if (drain) {
    // The same batched kicks as a drain by command; what is left at the deadline is told at once.
    KickInBatches(deadline);
    socket_front_->NoticeDrain();
  }
  const char* reason = drain ? "server draining" : "server stopping";
  if (tcp_) tcp_->Stop(close_code::kGoingAway, reason);
  if (ws_) ws_->Stop(close_code::kGoingAway, reason);
  // Let close frames flush and the transports report the closes, for a bounded time (at least
  // a second after the kicks).
  deadline = std::max(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  while (socket_front_->ConnectionCount() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (size_t left = socket_front_->ConnectionCount(); left > 0) {
    IM_LOG_WARN("{} connection(s) still open after {} ms; closing them", left, deadline_ms);
  }
  if (ws_) ws_->StopListening();
  if (catch_up_) catch_up_->Stop();  // before the pool it runs on stops
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
  socket_front_->Sweep(now);
  if (catch_up_) {
    // Subscribed again: pushes published by other nodes meanwhile were missed.
    const uint64_t subscriptions = broadcast_->subscriptions();
    if (subscriptions != subscriptions_seen_) {
      subscriptions_seen_ = subscriptions;
      IM_LOG_INFO("cluster: subscribed again; pushing each user connected here the newest "
                  "message of their inbox ({} connection(s))", broadcast_->local().LocalCount());
      catch_up_->Start();
    }
  }
  // Changes another node wrote to the registry; one refresh at a time, on a worker.
  if (now - last_tenant_refresh_ms_ >= options_.tenant_refresh_ms &&
      !tenant_refreshing_.exchange(true)) {
    last_tenant_refresh_ms_ = now;
    asio::post(*workers_, [this] {
      if (Status s = tenants_->Refresh(); !s.ok()) {
        IM_LOG_ERROR("tenant registry refresh failed (the last view stays): {}", s.ToString());
      }
      tenant_refreshing_ = false;
    });
  }
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


// The host API waits here for the committer: it blocks the host's thread, and must not be
// called from a hook (a hook runs on a worker or on the committer thread, which would then
// wait for itself or hold up the pool).
Result<SendReceipt> Server::Impl::SendAndWait(const SessionInfo* sender,
                                              std::shared_ptr<Message> message,
                                              const std::string& cid) {
  if (!running_) return Status::Unavailable("server not running");
  return chat_->SendAndWait(sender, std::move(message), cid);
}

Result<SendReceipt> Server::Impl::SendToUser(const UserKey& to, const std::string& from,
                                             std::string body, std::string type,
                                             std::string cid) {
  auto message = HostMessage(to.tenant, from, std::move(body), std::move(type));
  message->to = to.user;
  SessionInfo sender;
  sender.user = UserKey{to.tenant, from};
  return SendAndWait(from.empty() ? nullptr : &sender, std::move(message), cid);
}

Result<SendReceipt> Server::Impl::SendToGroup(const GroupKey& group, const std::string& from,
                                              std::string body, std::string type,
                                              std::string cid) {
  auto message = HostMessage(group.tenant, from, std::move(body), std::move(type));
  message->group = group.gid;
  return SendAndWait(nullptr, std::move(message), cid);
}

Status Server::Impl::Kick(const UserKey& user) {
  if (!sessions_) return Status::Unavailable("server not running");
  return sessions_->Kick(user, "admin");
}

size_t Server::Impl::OnlineCount() const { return deps_.router->LocalCount(); }

// ---- The public facade ----

Server::Server(ServerOptions options, ServerDeps deps)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(deps))) {}
Server::~Server() = default;
Status Server::Start() { return impl_->Start(); }
void Server::Stop() { impl_->Stop(); }
void Server::Drain(int64_t deadline_ms) { impl_->Drain(deadline_ms); }
bool Server::DrainSessions(int64_t deadline_ms) { return impl_->DrainSessions(deadline_ms); }
size_t Server::KickForDrain(size_t max, std::function<bool(const UserKey&)> select) {
  return impl_->KickForDrain(max, select);
}
size_t Server::DrainableCount() const { return impl_->DrainableCount(); }
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
void Server::SetBeforeSend(BeforeSendHook hook) { impl_->SetBeforeSend(std::move(hook)); }
void Server::SetOnLogin(SessionHook hook) { impl_->SetOnLogin(std::move(hook)); }
void Server::SetOnLogout(SessionHook hook) { impl_->SetOnLogout(std::move(hook)); }

}  // namespace im
