// A canary for attack tests: two logged-in users on their own connections, over the real
// protocol. The sender sends one 1:1 message to the receiver every `interval_ms`; the receiver
// timestamps each `chat.message` push as it comes off the socket. While an attack runs the
// canary measures what an ordinary user sees: send to push, and send to the `chat.send`
// response (the ack). A push that does not come within `deadline_ms` of its send counts as
// lost, so a stall shows up even when it outlasts the attack.
//
//   Canary canary(CanaryFor(server));
//   REQUIRE(canary.Start());
//   ... attack ...
//   CanaryReport r = canary.Stop();
//
// Thread-safety: Start and Stop from one thread (the test's); the canary runs its own threads.
#ifndef IM_TESTS_SUPPORT_CANARY_H_
#define IM_TESTS_SUPPORT_CANARY_H_

#include <cstddef>
#include <memory>
#include <string>

namespace im::test {

class TestServer;

struct CanaryOptions {
  std::string sender_url;  // "tcp://127.0.0.1:PORT" or "ws://127.0.0.1:PORT/ws"
  std::string receiver_url;
  std::string sender_token;  // a login token of the sending user
  std::string receiver_token;
  std::string receiver_user;  // the receiver's user id: the sender's `to`
  int interval_ms = 50;       // one send per interval (sends are not bunched up after a stall)
  // A message whose push has not arrived this long after its send when Stop() gives up
  // counts as lost. Stop() waits at most this long for the last pushes and acks.
  int deadline_ms = 3000;
  int connect_timeout_ms = 5000;  // connect and log in, each connection
};

// Sender TCP, receiver WebSocket (both transports in one measurement), on `server`, as users
// "canary-sender" and "canary-receiver" of tenant "default".
CanaryOptions CanaryFor(TestServer& server);

struct CanaryReport {
  bool started = false;  // both connections logged in
  size_t sent = 0;
  size_t acked = 0;     // chat.send answered with code 0
  size_t refused = 0;   // chat.send answered with an error code
  int first_error = 0;  // the first such code, and its error name
  std::string first_error_name;
  size_t received = 0;         // distinct canary pushes that arrived (late ones included)
  size_t lost = 0;             // sent, and no push within deadline_ms
  size_t duplicates = 0;       // pushes of a message already received
  bool sender_closed = false;  // a connection ended before Stop()
  bool receiver_closed = false;
  // Milliseconds, over the messages that arrived (pushes) or were answered (acks); 0 when none.
  double push_p50_ms = 0, push_p99_ms = 0, push_max_ms = 0;
  double ack_p50_ms = 0, ack_p99_ms = 0, ack_max_ms = 0;

  // One line with every field, for test failure messages.
  std::string ToString() const;
};

class Canary {
 public:
  explicit Canary(CanaryOptions options);
  ~Canary();  // stops if running
  Canary(const Canary&) = delete;
  Canary& operator=(const Canary&) = delete;

  // Connects and logs in both users, then starts sending. False when either connection or
  // login fails (Stop() then reports started = false).
  bool Start();
  // Stops sending, waits for the outstanding pushes (up to deadline_ms after their send),
  // closes both connections and reports. Call once.
  CanaryReport Stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_CANARY_H_
