#include "im/client.h"

#include <algorithm>
#include <atomic>
#include <random>

#include "client/client_impl.h"
#include "client/client_wire.h"
#include "client/route_resolver.h"
#include "protocol/json.h"
#include "transport/tcp_client.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im {

using internal::Bool;
using internal::I64;
using internal::JsonWriter;
using internal::ParseBody;
using internal::ParseLogin;
using internal::ParseMessage;
using internal::Str;
using internal::U64;

namespace {

bool Retryable(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kRateLimited;
}

// A retryable status this client made itself (no connection, no answer in time), rather than
// one the server sent.
bool IsLocal(const Status& s) {
  return s.error() == "disconnected" || s.error() == "reconnecting" || s.error() == "timeout";
}

// The shortest wait before resending after the server's own 429 or 503 (one without
// retry_after_ms: commands in flight, a full commit queue).
constexpr int64_t kServerRetryMs = 50;

std::string RandomCid() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return "c" + std::to_string(rng()) + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace

Status Client::Impl::Connect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (connected_) return Status::Error(Code::kConflict, "already_connected", "connected");
    final_ = false;
  }
  if (!io_thread_.joinable()) {
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
    control_ = std::thread([this] { ControlLoop(); });
  }
  return Dial();
}

Result<std::string> Client::Impl::Request(const std::string& cmd, const std::string& body_json,
                                          int64_t timeout_ms) {
  std::shared_ptr<internal::ClientTransport> transport;
  uint32_t id = next_id_.fetch_add(1);
  if (id == 0) id = next_id_.fetch_add(1);  // 0 is the heartbeat's
  auto pending = std::make_shared<internal::Pending>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!connected_) return Status::Error(Code::kUnavailable, "disconnected", "not connected");
    // While a reconnect has not logged in again, a command would be refused (401) and the
    // server would close the new connection: answer it here, retryable.
    if (logged_in_ && !authenticated_ && cmd != "login" && cmd != "ping") {
      return Status::Error(Code::kUnavailable, "reconnecting", "logging in again");
    }
    transport = transport_;
    pending_[id] = pending;
  }
  JsonWriter w;
  w.StartObject();
  w.Field("id", static_cast<uint64_t>(id));
  w.Field("cmd", cmd);
  if (!body_json.empty()) {
    w.Key("body");
    w.Raw(body_json);
  }
  w.EndObject();
  transport->Send(w.str());
  std::unique_lock<std::mutex> lock(mu_);
  int64_t t = timeout_ms > 0 ? timeout_ms : options_.request_timeout_ms;
  bool done = cv_.wait_for(lock, std::chrono::milliseconds(t), [&] { return pending->done; });
  pending_.erase(id);
  if (!done) return Status::Error(Code::kUnavailable, "timeout", cmd + " timed out");
  if (!pending->status.ok()) return pending->status;
  return pending->body;
}

Result<LoginInfo> Client::Impl::Login(const std::string& token, const std::string& device) {
  rapidjson::Document d;
  {
    // Pushes may overtake the login response (a message stored just before the session was
    // attached): they wait until the position in the inbox is known.
    std::lock_guard<std::mutex> lock(seq_mu_);
    resyncing_ = true;
  }
  Status s = ParseBody(Request("login", internal::LoginBody(token, device)), &d);
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(seq_mu_);
    resyncing_ = false;
    held_.clear();
    held_dropped_ = false;
    return s;
  }
  LoginInfo info = ParseLogin(d);
  {
    std::lock_guard<std::mutex> lock(mu_);
    token_ = token;
    device_ = device;
    logged_in_ = true;
    authenticated_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    if (resume_set_ && resume_epoch_ == info.epoch) {
      tracker_.Reset(std::min(resume_seq_, info.last_seq));
      // Catch up from the resume point in the background (delivered through OnMessage),
      // then the held pushes.
      if (tracker_.synced() < info.last_seq) need_resync_ = true;
    } else {
      // The backlog up to last_seq is the application's to sync; resume after it. Pushes of
      // that backlog that overtook the response are its too: dropped here, they neither reach
      // OnMessage nor look like a new epoch (a seq passed with an unseen mid) to the resync.
      tracker_.Reset(info.last_seq);
      held_.erase(std::remove_if(held_.begin(), held_.end(),
                                 [&](const ReceivedMessage& m) { return m.seq <= info.last_seq; }),
                  held_.end());
    }
    resume_set_ = false;
    epoch_ = info.epoch;
    // Pushes that overtook the response go out from the catch-up sync (the client's own
    // thread, in order after what it fetches); without any, nothing waits.
    if (!held_.empty() || held_dropped_) need_resync_ = true;
    if (!need_resync_) resyncing_ = false;
  }
  if (need_resync_) control_cv_.notify_all();
  StartHeartbeat(info.heartbeat_s);
  control_cv_.notify_all();
  return info;
}

Result<SendAck> Client::Impl::Send(const OutgoingMessage& m) {
  JsonWriter w;
  w.StartObject();
  if (!m.group.empty()) {
    w.Field("group", m.group);
  } else {
    w.Field("to", m.to);
  }
  w.Field("cid", m.cid.empty() ? RandomCid() : m.cid);
  w.Field("type", m.type);
  w.Field("body", m.body);
  if (!m.extra.empty()) {
    rapidjson::Document check;
    // Checked here: the server answers a frame nested too deep without an id, which would
    // leave this request waiting for its timeout.
    if (!internal::ParseJson(m.extra, &check, internal::kMaxExtraDepth).ok() || !check.IsObject()) {
      return Status::BadRequest("extra must be a JSON object nested at most " +
                                std::to_string(internal::kMaxExtraDepth) + " deep");
    }
    w.Key("extra");
    w.Raw(m.extra);
  }
  w.EndObject();
  const std::string body = w.str();
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.send_timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int64_t t = std::max<int64_t>(1, std::min<int64_t>(left.count(), options_.request_timeout_ms));
    rapidjson::Document d;
    Status s = ParseBody(Request("chat.send", body, t), &d);
    if (s.ok()) {
      SendAck ack{U64(d, "mid"), U64(d, "seq"), I64(d, "ts"), U64(d, "gseq")};
      {
        std::lock_guard<std::mutex> lock(seq_mu_);
        mids_.Insert(ack.mid);  // our own message comes back in a resync: not a new one
        tracker_.Mark(ack.seq);
      }
      if (ack.gseq != 0) {
        std::lock_guard<std::mutex> lock(present_mu_);
        std::vector<ReceivedMessage> out;
        gseq_order_.OwnSent(m.group, ack.gseq, &out);
        EmitLocked(out);
      }
      return ack;
    }
    // Retry under the same cid: the server stores it once however often it arrives.
    if (!Retryable(s) || !options_.auto_reconnect || Clock::now() >= deadline) return s;
    std::unique_lock<std::mutex> lock(mu_);
    if (final_) return s;
    if (IsLocal(s)) {
      // Not connected (or no answer): retry as soon as the session is back.
      cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)),
                     [this] { return (connected_ && authenticated_) || final_; });
    } else {
      // The server answered 429 or 503 on a live session: wait as long as it asked (at
      // least kServerRetryMs), never in a tight loop.
      const int64_t wait_ms = std::max<int64_t>(s.retry_after_ms(), kServerRetryMs);
      cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(wait_ms)),
                     [this] { return final_; });
    }
  }
}

Result<SyncPage> Client::Impl::Sync(uint64_t after, size_t limit) {
  JsonWriter w;
  w.StartObject();
  w.Field("after", after);
  w.Field("limit", static_cast<uint64_t>(limit));
  w.EndObject();
  rapidjson::Document d;
  Status s = ParseBody(Request("chat.sync", w.str()), &d);
  if (!s.ok()) return s;
  SyncPage page;
  if (d.HasMember("messages") && d["messages"].IsArray()) {
    for (const auto& m : d["messages"].GetArray()) page.messages.push_back(ParseMessage(m));
  }
  page.epoch = Str(d, "epoch");
  page.first_seq = U64(d, "first_seq");
  page.last_seq = U64(d, "last_seq");
  page.more = Bool(d, "more");
  page.gap = Bool(d, "gap");
  return page;
}

void Client::Impl::Close() {
  std::shared_ptr<internal::ClientTransport> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    final_ = true;
    t = transport_;
  }
  cv_.notify_all();
  control_cv_.notify_all();
  if (t) t->Close();
}

void Client::Impl::Shutdown() {
  Close();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  control_cv_.notify_all();
  if (control_.joinable()) control_.join();
  asio::post(io_, [this] {
    if (heartbeat_) heartbeat_->cancel();
  });
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  heartbeat_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  transport_.reset();
}

Status Client::Impl::Dial() {
  if (options_.route_url.empty()) return DialUrl(options_.url);
  Status s = Status::Unavailable("no gateway");
  for (const std::string& url : internal::RouteCandidates(options_)) {
    if ((s = DialUrl(url)).ok()) return s;
  }
  return s;
}

Status Client::Impl::DialUrl(const std::string& url) {
  std::shared_ptr<internal::ClientTransport> t;
  if (url.rfind("tcp://", 0) == 0) {
    std::string host;
    uint16_t port = 0;
    if (!internal::SplitHostPort(url.substr(6), &host, &port)) {
      return Status::BadRequest("bad url: " + url);
    }
    t = internal::NewTcpClientTransport(io_, host, port, options_.max_frame_bytes);
  } else if (url.rfind("ws://", 0) == 0) {
    t = internal::NewWsClientTransport(io_, url, options_.max_frame_bytes);
  } else {
    return Status::BadRequest("url must start with tcp:// or ws://: " + url);
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gen = ++generation_;
    close_code_ = 0;
    close_reason_.clear();
    kicked_ = false;
    authenticated_ = false;
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  t->on_message = [weak, gen](std::string text) {
    if (auto self = weak.lock()) self->OnText(gen, text);
  };
  t->on_close = [weak, gen](int code, std::string reason) {
    if (auto self = weak.lock()) self->OnTransportClosed(gen, code, std::move(reason));
  };
  Status s = t->Connect(options_.connect_timeout_ms);
  if (!s.ok()) return s;
  std::shared_ptr<internal::ClientTransport> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (gen != generation_) return Status::Unavailable("superseded");
    old = std::move(transport_);
    transport_ = std::move(t);
    connected_ = true;
  }
  cv_.notify_all();
  return Status::OK();  // `old` (already closed) is destroyed here, off the io thread
}

void Client::Impl::StartHeartbeat(int heartbeat_s) {
  int64_t ms = options_.heartbeat_ms > 0 ? options_.heartbeat_ms : int64_t{heartbeat_s} * 1000;
  if (ms <= 0) return;
  std::weak_ptr<Impl> weak = shared_from_this();
  asio::post(io_, [weak, ms] {
    auto self = weak.lock();
    if (!self || self->heartbeat_) return;
    self->heartbeat_ = std::make_unique<asio::steady_timer>(self->io_);
    self->heartbeat_ms_ = ms;
    self->ArmHeartbeat();
  });
}

void Client::Impl::ArmHeartbeat() {
  heartbeat_->expires_after(std::chrono::milliseconds(heartbeat_ms_));
  std::weak_ptr<Impl> weak = shared_from_this();
  heartbeat_->async_wait([weak](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    std::shared_ptr<internal::ClientTransport> t;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->connected_) t = self->transport_;
    }
    // Fire and forget (id 0, its response is ignored): the traffic keeps the session alive.
    if (t) t->Send(R"({"id":0,"cmd":"ping"})");
    self->ArmHeartbeat();
  });
}

void Client::Impl::OnTransportClosed(uint64_t gen, int code, std::string reason) {
  bool reconnect;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (gen != generation_) return;
    connected_ = false;
    authenticated_ = false;
    for (auto& [id, p] : pending_) {
      if (!p->done) {
        p->status = Status::Error(Code::kUnavailable, "disconnected", "connection closed");
        p->done = true;
      }
    }
    if (close_code_ != 0) {  // TCP: the session.closed push told the code
      code = close_code_;
      reason = close_reason_;
    }
    // A kick, a logout, Close() or an expired token end the session for good.
    bool final_close =
        final_ || kicked_ || code == 4001 || code == 4002 || (code == 1000 && reason == "logout");
    reconnect = options_.auto_reconnect && logged_in_ && !final_close && !stopping_;
    if (reconnect) {
      need_reconnect_ = true;
      // Pushes on the next connection wait until the resync delivered what came before them.
      std::lock_guard<std::mutex> seq_lock(seq_mu_);
      resyncing_ = true;
    } else {
      final_ = true;
      logged_in_ = false;
    }
  }
  cv_.notify_all();
  if (reconnect) {
    control_cv_.notify_all();
  } else {
    Emit([&] {
      if (on_closed_) on_closed_(code, reason);
    });
  }
}

void Client::Impl::Reconnect() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  int64_t delay = options_.reconnect_min_ms;
  for (int attempt = 1;; ++attempt) {
    std::uniform_int_distribution<int64_t> jitter(-delay / 4, delay / 4);
    int64_t wait = std::max<int64_t>(1, delay + jitter(rng));
    Emit([&] {
      if (on_reconnecting_) on_reconnecting_(attempt, wait);
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      control_cv_.wait_for(lock, std::chrono::milliseconds(wait),
                           [this] { return stopping_ || final_; });
      if (stopping_ || final_) return;
    }
    delay = std::min(delay * 2, options_.reconnect_max_ms);
    if (!Dial().ok()) continue;
    std::string token, device;
    {
      std::lock_guard<std::mutex> lock(mu_);
      token = token_;
      device = device_;
    }
    {
      // Pushes of the new connection (some may overtake the login response) wait for the
      // resync below, whatever an earlier attempt left.
      std::lock_guard<std::mutex> lock(seq_mu_);
      resyncing_ = true;
    }
    rapidjson::Document d;
    Status s = ParseBody(Request("login", internal::LoginBody(token, device)), &d);
    if (!s.ok()) {
      if (s.code() == Code::kUnauthenticated) {  // the token expired: only the app can help
        Fail(4002, std::string(s.error()));
        return;
      }
      continue;  // the connection went down again: back off and retry
    }
    LoginInfo info = ParseLogin(d);
    {
      std::lock_guard<std::mutex> lock(mu_);
      authenticated_ = true;
    }
    if (!Resync(info.epoch, /*keep_held=*/true)) continue;
    Emit([&] {
      if (on_reconnected_) on_reconnected_(info);
    });
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();  // senders waiting to retry
    return;
  }
}

void Client::Impl::Fail(int code, const std::string& reason) {
  std::shared_ptr<internal::ClientTransport> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    final_ = true;
    logged_in_ = false;
    t = transport_;
  }
  cv_.notify_all();
  if (t) t->Close();
  Emit([&] {
    if (on_closed_) on_closed_(code, reason);
  });
}

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
Client::~Client() { impl_->Shutdown(); }

Status Client::Connect() { return impl_->Connect(); }
Result<LoginInfo> Client::Login(const std::string& token, const std::string& device) {
  return impl_->Login(token, device);
}
Result<SendAck> Client::Send(const OutgoingMessage& message) { return impl_->Send(message); }
Result<SendAck> Client::SendText(const std::string& to, const std::string& body) {
  OutgoingMessage m;
  m.to = to;
  m.body = body;
  return impl_->Send(m);
}
Result<SyncPage> Client::Sync(uint64_t after, size_t limit) {
  auto page = impl_->Sync(after, limit);
  if (page.ok()) impl_->NoteSynced(*page);
  return page;
}
Status Client::Ack(uint64_t seq) {
  JsonWriter w;
  w.StartObject();
  w.Field("seq", seq);
  w.EndObject();
  auto r = impl_->Request("chat.ack", w.str());
  return r.ok() ? Status::OK() : r.status();
}
Result<TimestampMs> Client::Ping() {
  rapidjson::Document d;
  Status s = ParseBody(impl_->Request("ping", ""), &d);
  if (!s.ok()) return s;
  return I64(d, "server_ms");
}
Status Client::Logout() {
  impl_->MarkFinal();
  auto r = impl_->Request("logout", "");
  return r.ok() ? Status::OK() : r.status();
}
Result<std::string> Client::Request(const std::string& cmd, const std::string& body_json) {
  return impl_->Request(cmd, body_json);
}
void Client::Close() { impl_->Close(); }
bool Client::connected() const { return impl_->connected(); }
uint64_t Client::synced_seq() const { return impl_->synced_seq(); }
uint64_t Client::dropped_pushes() const { return impl_->dropped_pushes(); }
void Client::ResumeFrom(const std::string& epoch, uint64_t seq) { impl_->ResumeFrom(epoch, seq); }
void Client::OnMessage(std::function<void(const ReceivedMessage&)> cb) {
  impl_->on_message_ = std::move(cb);
}
void Client::OnKicked(std::function<void(const std::string&)> cb) {
  impl_->on_kicked_ = std::move(cb);
}
void Client::OnClosed(std::function<void(int, const std::string&)> cb) {
  impl_->on_closed_ = std::move(cb);
}
void Client::OnPush(std::function<void(const std::string&, const std::string&)> cb) {
  impl_->on_push_ = std::move(cb);
}
void Client::OnReconnecting(std::function<void(int, int64_t)> cb) {
  impl_->on_reconnecting_ = std::move(cb);
}
void Client::OnReconnected(std::function<void(const LoginInfo&)> cb) {
  impl_->on_reconnected_ = std::move(cb);
}
void Client::OnGap(std::function<void(const std::string&, uint64_t)> cb) {
  impl_->on_gap_ = std::move(cb);
}

}  // namespace im
