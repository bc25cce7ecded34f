// im-bench: a benchmark client of one target (im over TCP or WebSocket, MQTT 3.1.1, ceiling),
// seen by the scenarios through one interface: log in, send a test message to a user or a
// group, receive test messages, learn when a send is acknowledged.
#ifndef IM_BENCH_CLIENT_H_
#define IM_BENCH_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common.h"
#include "conn.h"

namespace imbench {

class Client;

// Callbacks of a client, on its thread.
class ClientEvents {
 public:
  // Logged in (and subscribed / joined what the config names).
  virtual void OnReady(Client& c) = 0;
  // config.defer_login: the connection is open (WebSocket: upgraded) and no login was sent;
  // Login() sends it.
  virtual void OnOpened(Client& /*c*/) {}
  // The login failed, or the connection went down (c.ready() tells whether it had logged in).
  virtual void OnFailed(Client& c, const std::string& why) = 0;
  // A test message arrived for this client (payload as built by BuildPayload).
  virtual void OnChat(Client& c, std::string_view payload) = 0;
  // The server acknowledged a send (`ok` false: it refused it, the reason is in the stats).
  virtual void OnSendDone(Client& c, uint64_t tag, bool ok, int64_t sent_ns) = 0;

 protected:
  ~ClientEvents() = default;
};

struct ClientConfig {
  std::string user;                 // im user id, MQTT client id, ceiling name
  std::string token;                // im: the login token
  std::vector<std::string> topics;  // MQTT: topics to subscribe; ceiling: groups to join
  int qos = -1;                     // MQTT: publish and subscribe QoS; -1 = --qos
  bool clean_session = true;        // MQTT
  bool auto_ack = false;            // im: chat.ack every 64 messages or 100 ms
  bool defer_login = false;         // connect only (OnOpened); the login waits for Login()
};

class Client : public Conn {
 public:
  Client(ThreadCtx* thread, Framing framing, ClientEvents* events, uint32_t index,
         ClientConfig config);

  // Connects and logs in (again); OnReady or OnFailed follows. With config.defer_login it only
  // connects: OnOpened or OnFailed follows.
  void Start(const asio::ip::tcp::endpoint& server);
  // config.defer_login, after OnOpened: sends the login (im `login`, MQTT CONNECT, ceiling
  // 'L'); OnReady or OnFailed follows.
  void Login() { SendLogin(); }
  // Sends a test message to a user (`group` false) or a group id. `sent_ns` is the time the
  // payload carries; OnSendDone(tag) follows when the target acknowledges sends.
  virtual void SendChat(const std::string& to, bool group, std::string_view payload,
                        uint64_t tag, int64_t sent_ns) = 0;
  // Whether OnSendDone means the message is done for the sender's window (im: stored; MQTT
  // QoS 1: PUBACK). Otherwise the scenario waits for the receivers.
  virtual bool AckFreesWindow() const = 0;
  // Every 100 ms: heartbeats, periodic acks.
  virtual void Tick(int64_t /*now*/) {}
  // A polite goodbye before Close() (MQTT DISCONNECT).
  virtual void Goodbye() {}

  bool ready() const { return ready_; }
  uint32_t index() const { return index_; }
  int64_t start_ns() const { return start_ns_; }
  const ClientConfig& config() const { return config_; }
  // For the next Start (e.g. another user).
  ClientConfig& mutable_config() { return config_; }
  ThreadStats& stats() { return thread().stats; }

 protected:
  void MarkReady();
  void MarkFailed(const std::string& why);
  void OnDown(const std::string& why) override;
  // The transport is up: sends the login, or tells OnOpened (config.defer_login).
  void OnOpen() final;
  // Sends the target's login message.
  virtual void SendLogin() = 0;
  // Called by Start before connecting: reset protocol state.
  virtual void Reset() {}

  // Sends waiting for their ack, keyed by protocol id (a ring: ids in flight at once must be
  // fewer than kPendingSlots).
  static constexpr uint32_t kPendingSlots = 4096;
  void Track(uint32_t id, uint64_t tag, int64_t sent_ns);
  bool Untrack(uint32_t id, uint64_t* tag, int64_t* sent_ns);

  ClientEvents* events_;
  ClientConfig config_;

 private:
  struct Pending {
    uint32_t id = 0;
    bool used = false;
    uint64_t tag = 0;
    int64_t sent_ns = 0;
  };
  const uint32_t index_;
  bool ready_ = false;
  int64_t start_ns_ = 0;
  std::unique_ptr<Pending[]> pending_;
};

// im JSON protocol over TCP or WebSocket.
class ImClient final : public Client {
 public:
  ImClient(ThreadCtx* thread, bool websocket, ClientEvents* events, uint32_t index,
           ClientConfig config);
  void SendChat(const std::string& to, bool group, std::string_view payload, uint64_t tag,
                int64_t sent_ns) override;
  bool AckFreesWindow() const override { return true; }
  void Tick(int64_t now) override;

  // A request with a callback for its response frame.
  void Request(const std::string& cmd, const std::string& body_json,
               std::function<void(std::string_view)> on_response);
  // The login response frame (last_seq, acked_seq, ...).
  const std::string& login_response() const { return login_response_; }
  // Sends chat.ack for `seq` now.
  void Ack(uint64_t seq);

 private:
  void Reset() override;
  void SendLogin() override;
  void OnMessage(std::string_view message, uint8_t kind) override;
  void OnPush(std::string_view frame);

  uint32_t next_id_ = 2;  // 1 is the login
  std::map<uint32_t, std::function<void(std::string_view)>> requests_;
  std::string login_response_;
  std::string frame_;  // reused when building requests
  uint64_t max_seq_ = 0;
  uint64_t acked_seq_ = 0;
  uint32_t unacked_ = 0;
  int64_t last_ack_ns_ = 0;
};

// MQTT 3.1.1: a user's messages go to topic u/<user>, a group's to g/<gid>.
class MqttClient final : public Client {
 public:
  MqttClient(ThreadCtx* thread, ClientEvents* events, uint32_t index, ClientConfig config);
  void SendChat(const std::string& to, bool group, std::string_view payload, uint64_t tag,
                int64_t sent_ns) override;
  bool AckFreesWindow() const override { return config_.qos >= 1; }
  void Tick(int64_t now) override;
  void Goodbye() override;
  bool session_present() const { return session_present_; }

 private:
  void Reset() override;
  void SendLogin() override;
  void OnMessage(std::string_view message, uint8_t kind) override;
  uint16_t NextPacketId();

  uint16_t next_packet_id_ = 0;
  bool session_present_ = false;
  std::string packet_;  // reused when building packets
};

// The bare ceiling server's protocol (see ceiling_server.cc).
class CeilingClient final : public Client {
 public:
  CeilingClient(ThreadCtx* thread, ClientEvents* events, uint32_t index, ClientConfig config);
  void SendChat(const std::string& to, bool group, std::string_view payload, uint64_t tag,
                int64_t sent_ns) override;
  bool AckFreesWindow() const override { return false; }

 private:
  void Reset() override;
  void SendLogin() override;
  void OnMessage(std::string_view message, uint8_t kind) override;

  uint32_t sends_ = 0;
  uint32_t acks_ = 0;
  size_t joins_left_ = 0;
  std::string frame_;
};

// A client of `options.target`.
std::unique_ptr<Client> MakeClient(const Options& options, ThreadCtx* thread,
                                   ClientEvents* events, uint32_t index, ClientConfig config);

}  // namespace imbench

#endif  // IM_BENCH_CLIENT_H_
