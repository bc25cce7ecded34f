#include "im/client.h"

#include <asio.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "protocol/json.h"
#include "transport/tcp_client.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im {

using internal::Fields;
using internal::JsonWriter;

namespace {

struct Pending {
  bool done = false;
  Status status;
  std::string body;  // response body JSON ("" when none)
};

std::string Str(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : std::string();
}
uint64_t U64(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  if (it == v.MemberEnd()) return 0;
  if (it->value.IsUint64()) return it->value.GetUint64();
  if (it->value.IsString()) return std::strtoull(it->value.GetString(), nullptr, 10);
  return 0;
}
int64_t I64(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}
bool Bool(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

ReceivedMessage ParseMessage(const rapidjson::Value& m) {
  ReceivedMessage r;
  r.seq = U64(m, "seq");
  r.message.mid = U64(m, "mid");
  r.message.from = Str(m, "from");
  r.message.to = Str(m, "to");
  r.message.group = Str(m, "group");
  r.message.type = Str(m, "type");
  r.message.body = Str(m, "body");
  r.message.ts = I64(m, "ts");
  auto extra = m.FindMember("extra");
  if (extra != m.MemberEnd() && extra->value.IsObject()) {
    r.message.extra = internal::ToJson(extra->value);
  }
  return r;
}

}  // namespace

class Client::Impl : public std::enable_shared_from_this<Client::Impl> {
 public:
  explicit Impl(ClientOptions options) : options_(std::move(options)) {}

  ~Impl() { Shutdown(); }

  Status Connect() {
    std::lock_guard<std::mutex> lock(connect_mu_);
    if (transport_) return Status::Error(Code::kConflict, "already_connected", "connected");
    const std::string& url = options_.url;
    if (url.rfind("tcp://", 0) == 0) {
      std::string host;
      uint16_t port = 0;
      if (!internal::SplitHostPort(url.substr(6), &host, &port)) {
        return Status::BadRequest("bad url: " + url);
      }
      transport_ = internal::NewTcpClientTransport(io_, host, port, options_.max_frame_bytes);
    } else if (url.rfind("ws://", 0) == 0) {
      transport_ = internal::NewWsClientTransport(io_, url, options_.max_frame_bytes);
    } else {
      return Status::BadRequest("url must start with tcp:// or ws://: " + url);
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    transport_->on_message = [weak](std::string text) {
      if (auto self = weak.lock()) self->OnText(text);
    };
    transport_->on_close = [weak](int code, std::string reason) {
      if (auto self = weak.lock()) self->OnTransportClosed(code, std::move(reason));
    };
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
    Status s = transport_->Connect(options_.connect_timeout_ms);
    if (!s.ok()) return s;
    connected_ = true;
    return Status::OK();
  }

  Result<std::string> Request(const std::string& cmd, const std::string& body_json) {
    if (!connected_) return Status::Unavailable("not connected");
    uint32_t id = next_id_.fetch_add(1);
    auto pending = std::make_shared<Pending>();
    {
      std::lock_guard<std::mutex> lock(mu_);
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
    transport_->Send(w.str());
    std::unique_lock<std::mutex> lock(mu_);
    bool done = cv_.wait_for(lock, std::chrono::milliseconds(options_.request_timeout_ms),
                             [&] { return pending->done; });
    pending_.erase(id);
    if (!done) return Status::Error(Code::kUnavailable, "timeout", cmd + " timed out");
    if (!pending->status.ok()) return pending->status;
    return pending->body;
  }

  void Close() {
    if (transport_) transport_->Close();
  }

  void Shutdown() {
    Close();
    if (heartbeat_) {
      asio::post(io_, [this] { heartbeat_->cancel(); });
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    heartbeat_.reset();
    transport_.reset();
  }

  void StartHeartbeat(int heartbeat_s) {
    int64_t ms = options_.heartbeat_ms > 0 ? options_.heartbeat_ms : int64_t{heartbeat_s} * 1000;
    if (ms <= 0) return;
    std::weak_ptr<Impl> weak = shared_from_this();
    asio::post(io_, [weak, ms] {
      auto self = weak.lock();
      if (!self) return;
      if (!self->heartbeat_) self->heartbeat_ = std::make_unique<asio::steady_timer>(self->io_);
      self->heartbeat_ms_ = ms;
      self->ArmHeartbeat();
    });
  }

  std::atomic<bool> connected_{false};
  std::function<void(const ReceivedMessage&)> on_message_;
  std::function<void(const std::string&)> on_kicked_;
  std::function<void(int, const std::string&)> on_closed_;
  std::function<void(const std::string&, const std::string&)> on_push_;

 private:
  void ArmHeartbeat() {
    heartbeat_->expires_after(std::chrono::milliseconds(heartbeat_ms_));
    std::weak_ptr<Impl> weak = shared_from_this();
    heartbeat_->async_wait([weak](const asio::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || !self->connected_) return;
      // Fire and forget: the response (id 0) is ignored; traffic keeps the session alive.
      self->transport_->Send(R"({"id":0,"cmd":"ping"})");
      self->ArmHeartbeat();
    });
  }

  void OnText(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    if (d.HasParseError() || !d.IsObject()) return;
    auto id = d.FindMember("id");
    if (id != d.MemberEnd() && id->value.IsUint()) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(id->value.GetUint());
      if (it == pending_.end()) return;
      Pending& p = *it->second;
      int code = d.HasMember("code") && d["code"].IsInt() ? d["code"].GetInt() : 500;
      if (code != 0) {
        p.status = Status::Error(static_cast<Code>(code), Str(d, "error"), Str(d, "message"));
      } else if (d.HasMember("body") && d["body"].IsObject()) {
        p.body = internal::ToJson(d["body"]);
      }
      p.done = true;
      cv_.notify_all();
      return;
    }
    std::string cmd = Str(d, "cmd");
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    const rapidjson::Value& body =
        d.HasMember("body") && d["body"].IsObject() ? d["body"] : kEmpty;
    if (cmd == "chat.message") {
      if (on_message_) on_message_(ParseMessage(body));
    } else if (cmd == "session.kicked") {
      if (on_kicked_) on_kicked_(Str(body, "reason"));
    } else if (cmd == "session.closed") {
      close_code_ = static_cast<int>(I64(body, "code"));
      close_reason_ = Str(body, "reason");
    } else if (!cmd.empty() && on_push_) {
      on_push_(cmd, internal::ToJson(body));
    }
  }

  void OnTransportClosed(int code, std::string reason) {
    connected_ = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, p] : pending_) {
        if (!p->done) {
          p->status = Status::Error(Code::kUnavailable, "disconnected", "connection closed");
          p->done = true;
        }
      }
      cv_.notify_all();
    }
    if (close_code_ != 0) {  // TCP: the session.closed push told the code
      code = close_code_;
      reason = close_reason_;
    }
    if (heartbeat_) heartbeat_->cancel();
    if (on_closed_) on_closed_(code, reason);
  }

  ClientOptions options_;
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::mutex connect_mu_;
  std::unique_ptr<internal::ClientTransport> transport_;
  std::unique_ptr<asio::steady_timer> heartbeat_;
  int64_t heartbeat_ms_ = 0;
  std::atomic<uint32_t> next_id_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint32_t, std::shared_ptr<Pending>> pending_;
  int close_code_ = 0;
  std::string close_reason_;
};

namespace {
std::string RandomCid() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return "c" + std::to_string(rng()) + "-" + std::to_string(counter.fetch_add(1));
}

Status ParseBody(const Result<std::string>& r, rapidjson::Document* d) {
  if (!r.ok()) return r.status();
  d->Parse(r->c_str(), r->size());
  if (d->HasParseError() || !d->IsObject()) {
    return Status::Internal("malformed response body");
  }
  return Status::OK();
}
}  // namespace

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
Client::~Client() { impl_->Shutdown(); }

Status Client::Connect() { return impl_->Connect(); }

Result<LoginInfo> Client::Login(const std::string& token, const std::string& device) {
  JsonWriter w;
  w.StartObject();
  w.Field("token", token);
  w.Field("device", device);
  w.EndObject();
  rapidjson::Document d;
  Status s = ParseBody(impl_->Request("login", w.str()), &d);
  if (!s.ok()) return s;
  LoginInfo info;
  info.user = Str(d, "user");
  info.tenant = Str(d, "tenant");
  info.session = Str(d, "session");
  info.node = Str(d, "node");
  info.epoch = Str(d, "epoch");
  info.last_seq = U64(d, "last_seq");
  info.acked_seq = U64(d, "acked_seq");
  info.heartbeat_s = static_cast<int>(I64(d, "heartbeat_s"));
  info.server_ms = I64(d, "server_ms");
  impl_->StartHeartbeat(info.heartbeat_s);
  return info;
}

Result<SendAck> Client::Send(const OutgoingMessage& m) {
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
    check.Parse(m.extra.c_str(), m.extra.size());
    if (check.HasParseError() || !check.IsObject()) {
      return Status::BadRequest("extra must be a JSON object");
    }
    w.Key("extra");
    w.Raw(m.extra);
  }
  w.EndObject();
  rapidjson::Document d;
  Status s = ParseBody(impl_->Request("chat.send", w.str()), &d);
  if (!s.ok()) return s;
  return SendAck{U64(d, "mid"), U64(d, "seq"), I64(d, "ts")};
}

Result<SendAck> Client::SendText(const std::string& to, const std::string& body) {
  OutgoingMessage m;
  m.to = to;
  m.body = body;
  return Send(m);
}

Result<SyncPage> Client::Sync(uint64_t after, size_t limit) {
  JsonWriter w;
  w.StartObject();
  w.Field("after", after);
  w.Field("limit", static_cast<uint64_t>(limit));
  w.EndObject();
  rapidjson::Document d;
  Status s = ParseBody(impl_->Request("chat.sync", w.str()), &d);
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
  auto r = impl_->Request("logout", "");
  return r.ok() ? Status::OK() : r.status();
}

Result<std::string> Client::Request(const std::string& cmd, const std::string& body_json) {
  return impl_->Request(cmd, body_json);
}

void Client::Close() { impl_->Close(); }
bool Client::connected() const { return impl_->connected_; }
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

}  // namespace im
