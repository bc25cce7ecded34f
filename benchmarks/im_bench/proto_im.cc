// The im JSON protocol (docs/protocol.md) over TCP or WebSocket, and the Client base.
#include "client.h"

namespace imbench {

// ---- Client ----

Client::Client(ThreadCtx* thread, Framing framing, ClientEvents* events, uint32_t index,
               ClientConfig config)
    : Conn(thread, framing), events_(events), config_(std::move(config)), index_(index) {}

void Client::Start(const asio::ip::tcp::endpoint& server) {
  ready_ = false;
  start_ns_ = NowNs();
  if (pending_) {
    for (uint32_t i = 0; i < kPendingSlots; ++i) pending_[i].used = false;
  }
  Reset();
  Open(server);
}

void Client::MarkReady() {
  ready_ = true;
  stats().ready.fetch_add(1, std::memory_order_relaxed);
  events_->OnReady(*this);
}

void Client::MarkFailed(const std::string& why) {
  Close();
  if (!ready_) stats().failed.fetch_add(1, std::memory_order_relaxed);
  events_->OnFailed(*this, why);
}

void Client::OnOpen() {
  if (config_.defer_login) {
    events_->OnOpened(*this);
    return;
  }
  SendLogin();
}

void Client::OnDown(const std::string& why) {
  if (!ready_) stats().failed.fetch_add(1, std::memory_order_relaxed);
  events_->OnFailed(*this, why);
}

void Client::Track(uint32_t id, uint64_t tag, int64_t sent_ns) {
  if (!pending_) pending_ = std::make_unique<Pending[]>(kPendingSlots);
  Pending& p = pending_[id % kPendingSlots];
  if (p.used) stats().Error("more sends in flight than im-bench tracks");
  p.id = id;
  p.used = true;
  p.tag = tag;
  p.sent_ns = sent_ns;
}

bool Client::Untrack(uint32_t id, uint64_t* tag, int64_t* sent_ns) {
  if (!pending_) return false;
  Pending& p = pending_[id % kPendingSlots];
  if (!p.used || p.id != id) return false;
  p.used = false;
  *tag = p.tag;
  *sent_ns = p.sent_ns;
  return true;
}

std::unique_ptr<Client> MakeClient(const Options& o, ThreadCtx* thread, ClientEvents* events,
                                   uint32_t index, ClientConfig config) {
  if (o.target == "im-tcp" || o.target == "im-ws") {
    return std::make_unique<ImClient>(thread, o.target == "im-ws", events, index,
                                      std::move(config));
  }
  if (o.target == "mqtt") {
    if (config.qos < 0) config.qos = o.qos;
    return std::make_unique<MqttClient>(thread, events, index, std::move(config));
  }
  return std::make_unique<CeilingClient>(thread, events, index, std::move(config));
}

// ---- ImClient ----

namespace {
constexpr uint32_t kAckEvery = 64;
constexpr int64_t kAckIntervalNs = 100'000'000;
constexpr int64_t kHeartbeatNs = 20'000'000'000;
}  // namespace

ImClient::ImClient(ThreadCtx* thread, bool websocket, ClientEvents* events, uint32_t index,
                   ClientConfig config)
    : Client(thread, websocket ? Framing::kWebSocket : Framing::kLen32, events, index,
             std::move(config)) {}

void ImClient::Reset() {
  next_id_ = 2;
  requests_.clear();
  max_seq_ = acked_seq_ = 0;
  unacked_ = 0;
}

void ImClient::SendLogin() {
  frame_ = "{\"id\":1,\"cmd\":\"login\",\"body\":{\"token\":\"" + config_.token +
           "\",\"device\":\"bench\"}}";
  Send(frame_);
}

void ImClient::SendChat(const std::string& to, bool group, std::string_view payload,
                        uint64_t tag, int64_t sent_ns) {
  uint32_t id = next_id_++;
  frame_.clear();
  frame_ += "{\"id\":";
  frame_ += std::to_string(id);
  frame_ += group ? ",\"cmd\":\"chat.send\",\"body\":{\"group\":\""
                  : ",\"cmd\":\"chat.send\",\"body\":{\"to\":\"";
  frame_ += to;
  frame_ += "\",\"cid\":\"";
  frame_ += RunId();
  frame_ += '-';
  frame_ += std::to_string(index());
  frame_ += '-';
  frame_ += std::to_string(tag);
  frame_ += "\",\"body\":\"";
  frame_.append(payload.data(), payload.size());
  frame_ += "\"}}";
  Track(id, tag, sent_ns);
  stats().sent_total++;
  Send(frame_);
}

void ImClient::Request(const std::string& cmd, const std::string& body_json,
                       std::function<void(std::string_view)> on_response) {
  uint32_t id = next_id_++;
  requests_[id] = std::move(on_response);
  Send("{\"id\":" + std::to_string(id) + ",\"cmd\":\"" + cmd + "\",\"body\":" + body_json + "}");
}

void ImClient::Ack(uint64_t seq) {
  if (seq == 0) return;
  acked_seq_ = std::max(acked_seq_, seq);
  unacked_ = 0;
  last_ack_ns_ = NowNs();
  // Acks are fire-and-forget; their responses match no pending id and are ignored.
  Send("{\"id\":" + std::to_string(next_id_++) + ",\"cmd\":\"chat.ack\",\"body\":{\"seq\":" +
       std::to_string(seq) + "}}");
}

void ImClient::Tick(int64_t now) {
  if (!is_open() || !ready()) return;
  if (config_.auto_ack && unacked_ > 0 && now - last_ack_ns_ >= kAckIntervalNs) Ack(max_seq_);
  if (now - last_send_ns() >= kHeartbeatNs) {
    Send("{\"id\":" + std::to_string(next_id_++) + ",\"cmd\":\"ping\"}");
  }
}

void ImClient::OnPush(std::string_view frame) {
  if (frame.compare(0, 22, "{\"cmd\":\"chat.message\",") == 0) {
    int64_t seq = IntAfter(frame, "\"seq\":");
    if (seq > 0 && static_cast<uint64_t>(seq) > max_seq_) max_seq_ = static_cast<uint64_t>(seq);
    if (Contains(frame, "\"type\":\"text\"")) {
      size_t at = frame.find("\"body\":\"T");
      if (at != std::string_view::npos) {
        at += 8;
        size_t end = frame.find('"', at);
        if (end != std::string_view::npos) events_->OnChat(*this, frame.substr(at, end - at));
      }
    }
    if (config_.auto_ack && ++unacked_ >= kAckEvery) Ack(max_seq_);
    return;
  }
  if (frame.compare(0, 16, "{\"cmd\":\"session.") == 0) {
    // session.kicked / session.closed: the connection is about to end.
    if (ready()) stats().Error("server said " + std::string(frame.substr(0, 120)));
  }
}

void ImClient::OnMessage(std::string_view frame, uint8_t /*kind*/) {
  if (frame.compare(0, 6, "{\"id\":") != 0) {
    if (frame.compare(0, 7, "{\"cmd\":") == 0) return OnPush(frame);
    stats().Error("unexpected frame " + std::string(frame.substr(0, 160)));
    return;
  }
  int64_t id = IntAfter(frame, "{\"id\":");
  int64_t code = IntAfter(frame, "\"code\":");
  if (id == 1 && !ready()) {
    if (code == 0) {
      login_response_.assign(frame.data(), frame.size());
      MarkReady();
    } else {
      MarkFailed("login refused: " + std::string(frame.substr(0, 200)));
    }
    return;
  }
  if (!requests_.empty()) {
    auto it = requests_.find(static_cast<uint32_t>(id));
    if (it != requests_.end()) {
      auto callback = std::move(it->second);
      requests_.erase(it);
      callback(frame);
      return;
    }
  }
  uint64_t tag = 0;
  int64_t sent_ns = 0;
  if (Untrack(static_cast<uint32_t>(id), &tag, &sent_ns)) {
    if (code != 0) stats().Error("chat.send refused: " + std::string(frame.substr(0, 200)));
    events_->OnSendDone(*this, tag, code == 0, sent_ns);
    return;
  }
  if (code != 0) stats().Error("error response: " + std::string(frame.substr(0, 200)));
}

}  // namespace imbench
