// im::Client's implementation, shared by its two halves: client.cc (connecting, requests, the
// reconnect loop, the public methods) and client_delivery.cc (pushes, resyncs, hole filling and
// the gseq presentation that deliver each message to OnMessage once and in order).
//
// Locks, in the order they may be taken: present_mu_, then callback_mu_; mu_ and seq_mu_ are
// never held while a callback runs or while present_mu_ is taken.
#ifndef IM_CLIENT_CLIENT_IMPL_H_
#define IM_CLIENT_CLIENT_IMPL_H_

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/gseq_order.h"
#include "client/seq_tracker.h"
#include "im/client.h"
#include "transport/websocket.h"

namespace im {
namespace internal {

// A request waiting for its response.
struct Pending {
  bool done = false;
  Status status;
  std::string body;  // response body JSON ("" when none)
};

}  // namespace internal

// State machine: idle -> connected -> logged in; a lost connection of a logged-in client goes to
// reconnecting (the control thread dials, logs in, resyncs) unless the close was final (kick,
// logout, Close(), a refused token).
class Client::Impl : public std::enable_shared_from_this<Client::Impl> {
 public:
  explicit Impl(ClientOptions options)
      : options_(std::move(options)),
        mids_(options_.dedup_window),
        gseq_order_(options_.gseq_hold_ms, options_.gseq_max_held) {}

  ~Impl() { Shutdown(); }

  Status Connect();

  Result<std::string> Request(const std::string& cmd, const std::string& body_json,
                              int64_t timeout_ms = 0);
  Result<LoginInfo> Login(const std::string& token, const std::string& device);
  Result<SendAck> Send(const OutgoingMessage& m);
  Result<SyncPage> Sync(uint64_t after, size_t limit);

  // Marks what the application fetched itself as delivered, so pushes of it are not repeated.
  void NoteSynced(const SyncPage& page);
  void Close();

  void MarkFinal() {
    std::lock_guard<std::mutex> lock(mu_);
    final_ = true;
  }

  void Shutdown();

  bool connected() {
    std::lock_guard<std::mutex> lock(mu_);
    return connected_;
  }

  uint64_t synced_seq() {
    std::lock_guard<std::mutex> lock(seq_mu_);
    return tracker_.synced();
  }

  uint64_t dropped_pushes() {
    std::lock_guard<std::mutex> lock(seq_mu_);
    return dropped_pushes_;
  }

  void ResumeFrom(const std::string& epoch, uint64_t seq) {
    std::lock_guard<std::mutex> lock(seq_mu_);
    resume_set_ = true;
    resume_epoch_ = epoch;
    resume_seq_ = seq;
  }

  std::function<void(const ReceivedMessage&)> on_message_;
  std::function<void(const std::string&)> on_kicked_;
  std::function<void(int, const std::string&)> on_closed_;
  std::function<void(const std::string&, const std::string&)> on_push_;
  std::function<void(int, int64_t)> on_reconnecting_;
  std::function<void(const LoginInfo&)> on_reconnected_;
  std::function<void(const std::string&, uint64_t)> on_gap_;

 private:
  using Clock = std::chrono::steady_clock;

  // Dials the route endpoint's gateways in order (client/route_resolver.h), else `url`.
  Status Dial();
  // Opens a new transport (a new generation: callbacks of older ones are ignored).
  Status DialUrl(const std::string& url);
  void StartHeartbeat(int heartbeat_s);
  void ArmHeartbeat();
  void OnText(uint64_t gen, const std::string& text);
  void OnTransportClosed(uint64_t gen, int code, std::string reason);
  void ControlLoop();

  // Dials with exponential backoff and jitter until logged in again, a final refusal, or stop.
  void Reconnect();
  void Fail(int code, const std::string& reason);

  // The pushes held while the position was unknown, in seq order, without those at or below
  // the synced seq (delivered already, or the application's backlog) and those seen already.
  // Under seq_mu_.
  std::vector<ReceivedMessage> TakeHeldLocked();

  // A seq above a hole waited a full control tick: fetch what is missing.
  void FillHoles();

  // Fetches everything after the synced seq and delivers it (deduplicated, in order), then the
  // pushes held meanwhile. False when the connection failed midway.
  // On failure, `keep_held` leaves the pushes held (and resyncing_ set) for the next resync:
  // the reconnect's, which runs after the next login. Otherwise they are delivered.
  bool Resync(const std::string& epoch, bool keep_held = false);

  // Hands `messages` (in arrival order) to OnMessage through the gseq order. Never called
  // under seq_mu_ or mu_ (present_mu_ comes first, then the callback's mutex).
  void Present(std::vector<ReceivedMessage> messages);

  // Releases the group messages whose hold ended.
  void PresentExpired();

  // Under present_mu_.
  void EmitLocked(const std::vector<ReceivedMessage>& out);

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  }

  // Runs `f` (which calls one callback) with the other callbacks excluded.
  template <typename F>
  void Emit(F&& f) {
    std::lock_guard<std::recursive_mutex> lock(callback_mu_);
    f();
  }

  ClientOptions options_;
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::thread control_;
  std::unique_ptr<asio::steady_timer> heartbeat_;  // io thread only
  int64_t heartbeat_ms_ = 0;
  std::atomic<uint32_t> next_id_{1};
  std::recursive_mutex callback_mu_;  // one callback at a time

  std::mutex mu_;  // guards the connection state below
  std::condition_variable cv_;
  std::condition_variable control_cv_;
  std::shared_ptr<internal::ClientTransport> transport_;
  uint64_t generation_ = 0;
  bool connected_ = false;
  bool logged_in_ = false;      // the application logged in: reconnects log in again
  bool authenticated_ = false;  // the current connection is logged in
  bool final_ = false;
  bool kicked_ = false;
  bool stopping_ = false;
  bool need_reconnect_ = false;
  int close_code_ = 0;
  std::string close_reason_;
  std::string token_;
  std::string device_;
  std::unordered_map<uint32_t, std::shared_ptr<internal::Pending>> pending_;

  std::mutex seq_mu_;  // guards the delivery state below
  internal::SeqTracker tracker_;
  internal::MidWindow mids_;
  std::string epoch_;
  bool resyncing_ = false;
  std::vector<ReceivedMessage> held_;  // at most options_.max_held_pushes
  bool held_dropped_ = false;           // a push found held_ full since the last sync began
  uint64_t dropped_pushes_ = 0;
  int hole_ticks_ = 0;
  std::mutex present_mu_;  // guards gseq_order_; taken before callback_mu_, never under seq_mu_
  internal::GseqOrder gseq_order_;
  std::atomic<int64_t> next_hold_end_{internal::GseqOrder::kNever};
  std::atomic<bool> need_resync_{false};
  bool resume_set_ = false;
  std::string resume_epoch_;
  uint64_t resume_seq_ = 0;
};

}  // namespace im

#endif  // IM_CLIENT_CLIENT_IMPL_H_
