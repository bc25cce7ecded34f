// im::Client: the C++ client SDK. Speaks wire protocol v1 over TCP (length-prefixed frames) or
// WebSocket. Requests are blocking with a timeout; pushes arrive through callbacks.
//
// Reliability: after a lost connection the client reconnects with exponential backoff and
// jitter, logs in again with the same token and device, and syncs from the last seq it saw
// (paging until `more` is false), so the application receives every message exactly once
// through OnMessage (pushes and synced entries are deduplicated by mid). Send() retries under
// the same cid across timeouts and reconnects until `send_timeout_ms`, and the server's dedup
// turns the retries into one stored message. After a kick, a logout or Close() it does not
// reconnect; a kick with reason "drain" (the node is going away) is not final: it reconnects,
// through route_url when set.
//
// Thread-safety: all request methods are safe from any thread (requests are multiplexed by id).
// Callbacks run on the client's internal threads, one at a time: they must not block, and must
// not call the blocking request methods (post the work elsewhere instead).
#ifndef IM_CLIENT_H_
#define IM_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "im/result.h"
#include "im/types.h"

namespace im {

struct ClientOptions {
  // "tcp://127.0.0.1:7001" or "ws://127.0.0.1:7000/ws".
  std::string url = "tcp://127.0.0.1:7001";
  // Optional: a GET /v1/route URL with its query, e.g.
  // "http://127.0.0.1:7000/v1/route?tenant=default&user=alice". When set, every connect and
  // reconnect asks it first and dials the gateways it answers in order (WebSocket ones when
  // `url` is ws://, else TCP), then `url` as the fallback.
  std::string route_url;
  int64_t connect_timeout_ms = 5000;
  int64_t request_timeout_ms = 10000;  // a request without a response by then: 503 timeout
  // Larger incoming frames close the connection. Server responses (sync pages) can exceed the
  // server's own 64 KiB request limit, so this is larger.
  size_t max_frame_bytes = 4 << 20;
  // Ping this often (0 = the server's heartbeat_s), so the server never sees a silent session.
  int64_t heartbeat_ms = 0;
  // Reconnect after a lost connection (not after a kick, a logout or Close()).
  bool auto_reconnect = true;
  int64_t reconnect_min_ms = 100;     // first backoff; doubles per failed attempt
  int64_t reconnect_max_ms = 10000;   // backoff cap; each delay gets +-25% jitter
  // Send() keeps retrying (same cid) across timeouts and reconnects for this long. After the
  // server's 429 rate_limited or 503 it waits the answer's retry_after_ms (at least 50 ms)
  // before it sends again.
  int64_t send_timeout_ms = 30000;
  // Pushes are deduplicated by mid over this many recent messages.
  size_t dedup_window = 8192;
  // Group messages that carry a gseq (Redis inboxes sharded over several primaries) reach
  // OnMessage in gseq order per group: one that comes before a lower gseq of its group waits
  // for it at most this long, then the missing ones are given up (docs/protocol.md, gseq).
  // The first group message after the client starts waits as long, for lower ones. A resync's
  // page is presented with each group's messages in gseq order (they take that group's places
  // in the page). Sync() itself returns pages as the server sent them. A held message counts
  // in synced_seq() already; one still held when the client is destroyed is not presented.
  int64_t gseq_hold_ms = 1000;
  // At most this many messages wait so; one more releases the longest-waiting group's next.
  size_t gseq_max_held = 1000;
  // Pushes that arrive while the client resyncs (or before the login response) wait for the
  // resync, at most this many (0 = none wait). One more is dropped and counted in
  // dropped_pushes(); the client then syncs once more after the resync, which fetches it, so
  // OnMessage still gets every message once and in order, later. Likewise at most this many
  // seqs delivered above a hole (a lost push) are remembered until a sync fills it: the next
  // push above the hole is dropped and counted, and that sync starts at once.
  size_t max_held_pushes = 10000;
};

struct LoginInfo {
  std::string user;
  std::string tenant;
  std::string session;
  std::string node;
  std::string epoch;
  uint64_t last_seq = 0;
  uint64_t acked_seq = 0;
  int heartbeat_s = 0;
  TimestampMs server_ms = 0;
};

struct SendAck {
  uint64_t mid = 0;
  uint64_t seq = 0;  // the sender's own inbox seq
  TimestampMs ts = 0;
  uint64_t gseq = 0;  // a group message's gseq (sharded Redis inboxes), else 0
};

// A message as a client sees it: the receiver's seq plus the message.
struct ReceivedMessage {
  uint64_t seq = 0;
  Message message;  // `extra` is the serialized JSON object ("" when absent)
};

struct SyncPage {
  std::vector<ReceivedMessage> messages;  // in seq order, as the server sent them
  std::string epoch;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool more = false;
  bool gap = false;
};

// What to send. Exactly one of `to` and `group` is set.
struct OutgoingMessage {
  std::string to;
  std::string group;
  std::string cid;  // "" = the client makes a unique one
  std::string type = "text";
  std::string body;
  std::string extra;  // serialized JSON object, or ""
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();  // Closes.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects (blocking up to connect_timeout_ms).
  Status Connect();
  // Logs in. A refusal (401) leaves the connection open for another try.
  Result<LoginInfo> Login(const std::string& token, const std::string& device = "default");
  Result<SendAck> Send(const OutgoingMessage& message);
  Result<SendAck> SendText(const std::string& to, const std::string& body);
  Result<SyncPage> Sync(uint64_t after, size_t limit = 100);
  Status Ack(uint64_t seq);
  Result<TimestampMs> Ping();
  Status Logout();
  // Any command: `body_json` is a JSON object text; returns the response body as JSON text.
  Result<std::string> Request(const std::string& cmd, const std::string& body_json);
  // Closes the connection. Idempotent; pending requests fail with 503.
  void Close();
  bool connected() const;

  // Callbacks (set before Connect).
  void OnMessage(std::function<void(const ReceivedMessage&)> callback);
  // session.kicked: reason ("login_elsewhere", "token_expired", "drain", "admin").
  void OnKicked(std::function<void(const std::string& reason)> callback);
  // The connection ended: close code (0 when unknown, e.g. a TCP reset) and reason.
  void OnClosed(std::function<void(int code, const std::string& reason)> callback);
  // Any other push: cmd and body as JSON text.
  void OnPush(std::function<void(const std::string& cmd, const std::string& body)> callback);
  // The connection was lost; reconnect attempt `attempt` (1, 2, ...) starts after `delay_ms`.
  void OnReconnecting(std::function<void(int attempt, int64_t delay_ms)> callback);
  // Logged in again and caught up (the resync has been delivered through OnMessage).
  void OnReconnected(std::function<void(const LoginInfo& info)> callback);
  // Messages may be missing: retention dropped entries after `after_seq` (reason "retention"),
  // or the server's inbox epoch changed so seqs restarted (reason "epoch"; the client then
  // resyncs from 0). The application may want to reload the conversation.
  void OnGap(std::function<void(const std::string& reason, uint64_t after_seq)> callback);

  // The highest seq up to which every message was delivered to OnMessage (or acknowledged
  // through Send): where a resync starts. After the first login it is that login's last_seq
  // unless set with ResumeFrom (older entries are the offline backlog the application syncs).
  uint64_t synced_seq() const;
  // Pushes dropped at max_held_pushes (each was fetched again by a sync, not lost). For
  // monitoring: a steady rise means resyncs take long, or pushes are lost, under heavy traffic.
  uint64_t dropped_pushes() const;
  // Where to resume after the next login: the epoch and seq the application persisted. Call
  // before Login.
  void ResumeFrom(const std::string& epoch, uint64_t seq);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace im

#endif  // IM_CLIENT_H_
