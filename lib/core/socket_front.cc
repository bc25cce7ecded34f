#include "core/socket_front.h"

#include <asio/post.hpp>

#include "base/thread_name.h"
#include "ops/log.h"

namespace im::internal {

SocketFront::SocketFront(Deps deps)
    : deps_(deps),
      options_(*deps.options),
      token_expired_notice_(
          Frame::FromString(EncodePush("session.kicked", R"({"reason":"token_expired"})"))),
      suspended_notice_(
          Frame::FromString(EncodePush("session.kicked", R"({"reason":"tenant_suspended"})"))),
      drain_notice_(Frame::FromString(EncodePush("session.kicked", R"({"reason":"drain"})"))) {}

ConnectionContext SocketFront::OnOpen(const std::shared_ptr<Connection>& connection) {
  const bool tcp = connection->transport() == TransportKind::kTcp;
  if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= options_.max_connections) {
    // Over the bound: never registered and no context, so its OnClose finds nothing to forget.
    open_connections_.fetch_sub(1, std::memory_order_relaxed);
    deps_.metrics->ConnectionRefused(!tcp);
    IM_LOG_DEBUG("connection {} from {} refused: {} open (max_connections)", connection->id(),
                 connection->remote_address(), options_.max_connections);
    connection->Close(close_code::kTryAgainLater, "server full");
    return nullptr;
  }
  IM_LOG_DEBUG("connection {} opened from {} ({})", connection->id(),
               connection->remote_address(), tcp ? "tcp" : "ws");
  auto state = std::make_shared<ConnState>(connection, deps_.clock->NowMs());
  conns_.Add(state);
  return state;
}

void SocketFront::OnFrame(const std::shared_ptr<Connection>& connection,
                           const ConnectionContext& context, std::string payload) {
  if (!context) return;
  std::shared_ptr<ConnState> state = std::static_pointer_cast<ConnState>(context);
  state->last_seen_ms.store(deps_.clock->NowMs(), std::memory_order_relaxed);
  auto req = std::make_shared<Request>();
  Status s = ParseRequest(payload, req.get());
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
  Queue(state, std::move(req));
}

void SocketFront::Queue(const std::shared_ptr<ConnState>& state, std::shared_ptr<Request> item) {
  {
    std::lock_guard<std::mutex> lock(state->work_mu);
    if (state->work_head > 0 && state->work_head * 2 >= state->work.size()) {
      // Drop the items already run, so a connection that always has more does not grow it.
      state->work.erase(state->work.begin(),
                        state->work.begin() + static_cast<ptrdiff_t>(state->work_head));
      state->work_head = 0;
    }
    state->work.push_back(std::move(item));
    if (state->turn_queued) return;
    state->turn_queued = true;
  }
  PostTurn(state);
}

void SocketFront::PostTurn(const std::shared_ptr<ConnState>& state) {
  turns_waiting_.fetch_add(1, std::memory_order_relaxed);
  asio::post(*deps_.workers, [this, state] { RunTurn(state); });
}

bool SocketFront::NothingWaits(ConnState& state) {
  if (turns_waiting_.load(std::memory_order_relaxed) != 0) return false;
  std::lock_guard<std::mutex> lock(state.work_mu);
  return state.work_head == state.work.size();
}

void SocketFront::RunTurn(const std::shared_ptr<ConnState>& state) {
  SetUpThisThreadOnce("im-worker", options_.thread_slice_us);
  turns_waiting_.fetch_sub(1, std::memory_order_relaxed);
  for (int i = 0;; ++i) {
    std::shared_ptr<Request> req;
    {
      std::lock_guard<std::mutex> lock(state->work_mu);
      if (state->work_head == state->work.size()) {
        state->work.clear();
        state->work_head = 0;
        state->turn_queued = false;
        return;
      }
      if (i == kItemsPerTurn) break;  // more to do: after the others waiting for a worker
      req = std::move(state->work[state->work_head++]);
    }
    if (req == nullptr) {
      EndSession(*state);
    } else {
      state->pending.fetch_sub(1, std::memory_order_relaxed);
      Dispatch(state, req);
    }
  }
  PostTurn(state);
}

void SocketFront::OnClose(const std::shared_ptr<Connection>& connection,
                           const ConnectionContext& /*context*/) {
  // Taken from the registry (not from the context, which a connection closed before it started
  // reading may not carry): whatever is registered is forgotten exactly once.
  std::shared_ptr<ConnState> state = conns_.Take(connection->id());
  if (!state) return;
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
  IM_LOG_DEBUG("connection {} closed", connection->id());
  state->closed = true;
  // After the commands of this connection queued or running (e.g. a login).
  Queue(state, nullptr);
}

void SocketFront::OnTraffic(const Connection& /*connection*/,
                             const ConnectionContext& context) {
  if (context) {
    static_cast<ConnState*>(context.get())->last_seen_ms.store(deps_.clock->NowMs(),
                                                               std::memory_order_relaxed);
  }
}

void SocketFront::OnSlowConsumer(const Connection& connection, size_t queued_bytes) {
  const bool ws = connection.transport() == TransportKind::kWebSocket;
  deps_.metrics->SlowConsumer(ws);
  BusinessEvent e;
  e.event = "slow_consumer_closed";
  // Rare (once per closed connection), and from any thread: the registry, not the context.
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
  deps_.events->Emit(e);
  IM_LOG_CLIENT_WARN("slow consumer: closing connection {} ({} user '{}') with {} bytes queued",
                     connection.id(), connection.remote_address(), e.user, queued_bytes);
}

void SocketFront::EndSession(ConnState& state, const char* reason) {
  if (!state.logged_in.exchange(false)) return;
  SessionInfo session;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    session = state.session;
  }
  deps_.sessions->End(session, state.conn->remote_address(), reason);
}

void SocketFront::Sweep(TimestampMs now) {
  const int64_t idle_ms = int64_t{options_.heartbeat_s} * 3 * 1000;
  conns_.ForEach([&](const std::shared_ptr<ConnState>& s) {
    if (!s->logged_in.load()) {
      if (now - s->opened_ms > options_.login_timeout_ms) {
        s->conn->Close(close_code::kUnauthenticated, "login timeout");
      }
    } else if (TenantSuspended(*s)) {
      // Checked before expiry: the reason the client is told must say it cannot come back.
      if (!s->closed.load()) {
        std::lock_guard<std::mutex> lock(s->mu);
        deps_.sessions->LogKick(s->session, s->conn->remote_address(), "tenant_suspended");
      }
      s->conn->Send(suspended_notice_);
      s->conn->Close(close_code::kKicked, "tenant suspended");
    } else if (TimestampMs exp = s->token_expires_ms.load(); exp > 0 && now > exp + options_.token_grace_ms) {
      // The token ran out and no fresh login came: the client must get a new token.
      if (!s->closed.load()) {
        std::lock_guard<std::mutex> lock(s->mu);
        deps_.sessions->LogKick(s->session, s->conn->remote_address(), "token_expired");
      }
      s->conn->Send(token_expired_notice_);
      s->conn->Close(close_code::kUnauthenticated, "token expired");
    } else if (now - s->last_seen_ms.load(std::memory_order_relaxed) > idle_ms) {
      // No traffic for three heartbeats: a half-open socket or a dead client.
      s->conn->Close(close_code::kNormal, "heartbeat timeout");
    }
  });
}

bool SocketFront::TenantSuspended(ConnState& s) {
  std::string tenant;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    tenant = s.session.user.tenant;
  }
  std::shared_ptr<const TenantDirectory::Policy> policy = deps_.tenants->Find(tenant);
  return policy && policy->suspended();
}

void SocketFront::NoticeDrain() {
  // Tell every session to move to another node; its client reconnects and resyncs.
  conns_.ForEach([&](const std::shared_ptr<ConnState>& s) {
    if (!s->logged_in.load() || s->drain_kicked.exchange(true)) return;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      deps_.sessions->LogKick(s->session, s->conn->remote_address(), "drain");
    }
    s->conn->Send(drain_notice_);
  });
}

size_t SocketFront::KickForDrain(size_t max,
                                 const std::function<bool(const UserKey&)>& select) {
  size_t kicked = 0;
  conns_.ForEach([&](const std::shared_ptr<ConnState>& s) {
    if (kicked >= max || !s->logged_in.load() || s->drain_kicked.load()) return;
    SessionInfo session;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      session = s->session;
    }
    if (select && !select(session.user)) return;
    if (s->drain_kicked.exchange(true)) return;
    MoveSession(*s, session, "drain", "server draining");
    ++kicked;
  });
  return kicked;
}

bool SocketFront::MoveIfEpochStale(uint64_t connection_id, const std::string& epoch) {
  std::shared_ptr<ConnState> s = conns_.Find(connection_id);
  if (!s || !s->logged_in.load()) return false;
  const uint64_t told = s->epoch_told.load();
  if (told == 0 || told == EpochTag(epoch) || s->drain_kicked.exchange(true)) return false;
  SessionInfo session;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    session = s->session;
  }
  MoveSession(*s, session, "epoch_changed", "inbox epoch changed");
  return true;
}

void SocketFront::MoveSession(ConnState& state, const SessionInfo& session,
                              const char* event_reason, const char* close_reason) {
  deps_.sessions->LogKick(session, state.conn->remote_address(), event_reason);
  state.conn->Send(drain_notice_);
  state.conn->Close(close_code::kGoingAway, close_reason);
}

size_t SocketFront::DrainableCount() {
  size_t n = 0;
  conns_.ForEach([&n](const std::shared_ptr<ConnState>& s) {
    n += s->logged_in.load() && !s->drain_kicked.load() && !s->closed.load() ? 1 : 0;
  });
  return n;
}

void SocketFront::AddToSnapshot(Metrics::Snapshot& s) {
  conns_.ForEach([&s](const std::shared_ptr<ConnState>& c) {
    const bool tcp = c->conn->transport() == TransportKind::kTcp;
    (tcp ? s.tcp_connections : s.ws_connections) += 1;
    const double queued = static_cast<double>(c->conn->queued_bytes());
    s.send_queue_bytes += queued;
    s.send_queue_max_bytes = std::max(s.send_queue_max_bytes, queued);
    if (c->logged_in.load()) {
      std::lock_guard<std::mutex> lock(c->mu);
      s.sessions[{c->session.user.tenant, tcp ? "tcp" : "ws"}] += 1;
    }
  });
}

}  // namespace im::internal
