// MQTT 3.1.1 client: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH at QoS 0 and 1 with PUBACK in
// both directions, PINGREQ/PINGRESP, DISCONNECT.
#include "client.h"

namespace imbench {

namespace {

constexpr uint8_t kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kSubscribe = 8,
                  kSuback = 9, kPingreq = 12, kPingresp = 13, kDisconnect = 14;
constexpr uint16_t kKeepAliveS = 60;
constexpr int64_t kPingEveryNs = 30'000'000'000;

void PutLength(std::string* out, size_t len) {
  do {
    uint8_t b = len % 128;
    len /= 128;
    if (len > 0) b |= 0x80;
    out->push_back(static_cast<char>(b));
  } while (len > 0);
}

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

void PutString(std::string* out, std::string_view s) {
  PutU16(out, static_cast<uint16_t>(s.size()));
  out->append(s.data(), s.size());
}

uint16_t GetU16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}

}  // namespace

MqttClient::MqttClient(ThreadCtx* thread, ClientEvents* events, uint32_t index,
                       ClientConfig config)
    : Client(thread, Framing::kMqtt, events, index, std::move(config)) {}

void MqttClient::Reset() { session_present_ = false; }

uint16_t MqttClient::NextPacketId() {
  if (++next_packet_id_ == 0) next_packet_id_ = 1;
  return next_packet_id_;
}

void MqttClient::SendLogin() {
  std::string body;
  PutString(&body, "MQTT");
  body.push_back(4);  // protocol level 3.1.1
  body.push_back(config_.clean_session ? 0x02 : 0x00);
  PutU16(&body, kKeepAliveS);
  PutString(&body, config_.user);
  packet_.clear();
  packet_.push_back(static_cast<char>(kConnect << 4));
  PutLength(&packet_, body.size());
  packet_ += body;
  Send(packet_);
}

void MqttClient::SendChat(const std::string& to, bool group, std::string_view payload,
                          uint64_t tag, int64_t sent_ns) {
  const int qos = config_.qos >= 1 ? 1 : 0;
  const size_t topic_len = 2 + to.size();
  const size_t len = 2 + topic_len + (qos ? 2 : 0) + payload.size();
  packet_.clear();
  packet_.push_back(static_cast<char>((kPublish << 4) | (qos << 1)));
  PutLength(&packet_, len);
  PutU16(&packet_, static_cast<uint16_t>(topic_len));
  packet_ += group ? "g/" : "u/";
  packet_ += to;
  if (qos) {
    uint16_t id = NextPacketId();
    PutU16(&packet_, id);
    Track(id, tag, sent_ns);
  }
  packet_.append(payload.data(), payload.size());
  stats().sent_total++;
  Send(packet_);
}

void MqttClient::Tick(int64_t now) {
  // Only once connected: a PINGREQ before CONNECT is a protocol error (a connection opened
  // without a login yet, as `login --mode established` keeps them, must stay quiet).
  if (is_open() && ready() && now - last_send_ns() >= kPingEveryNs) {
    const char ping[2] = {static_cast<char>(kPingreq << 4), 0};
    Send(std::string_view(ping, 2));
  }
}

void MqttClient::Goodbye() {
  if (!is_open()) return;
  const char bye[2] = {static_cast<char>(kDisconnect << 4), 0};
  Send(std::string_view(bye, 2));
}

void MqttClient::OnMessage(std::string_view m, uint8_t kind) {
  const uint8_t type = kind >> 4;
  switch (type) {
    case kPublish: {
      const int qos = (kind >> 1) & 3;
      if (m.size() < 2) break;
      size_t at = 2 + GetU16(m, 0);
      uint16_t id = 0;
      if (qos > 0) {
        if (m.size() < at + 2) break;
        id = GetU16(m, at);
        at += 2;
      }
      if (at > m.size()) break;
      events_->OnChat(*this, m.substr(at));
      if (qos == 1) {
        const char ack[4] = {static_cast<char>(kPuback << 4), 2, static_cast<char>(id >> 8),
                             static_cast<char>(id & 0xff)};
        Send(std::string_view(ack, 4));
      }
      return;
    }
    case kPuback: {
      if (m.size() < 2) break;
      uint64_t tag = 0;
      int64_t sent_ns = 0;
      if (Untrack(GetU16(m, 0), &tag, &sent_ns)) events_->OnSendDone(*this, tag, true, sent_ns);
      return;
    }
    case kConnack: {
      if (m.size() < 2) break;
      if (m[1] != 0) {
        MarkFailed("CONNACK return code " + std::to_string(static_cast<int>(m[1])));
        return;
      }
      session_present_ = (m[0] & 1) != 0;
      if (config_.topics.empty()) {
        MarkReady();
        return;
      }
      std::string body;
      PutU16(&body, NextPacketId());
      for (const auto& topic : config_.topics) {
        PutString(&body, topic);
        body.push_back(static_cast<char>(config_.qos >= 1 ? 1 : 0));
      }
      packet_.clear();
      packet_.push_back(static_cast<char>((kSubscribe << 4) | 0x02));
      PutLength(&packet_, body.size());
      packet_ += body;
      Send(packet_);
      return;
    }
    case kSuback: {
      for (size_t i = 2; i < m.size(); ++i) {
        if (static_cast<uint8_t>(m[i]) == 0x80) {
          MarkFailed("SUBACK refused a subscription");
          return;
        }
      }
      if (!ready()) MarkReady();
      return;
    }
    case kPingresp:
      return;
    default:
      break;
  }
  stats().Error("unexpected MQTT packet type " + std::to_string(type));
}

}  // namespace imbench
