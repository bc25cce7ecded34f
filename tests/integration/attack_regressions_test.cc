// The attack suite's regressions (see attack_test.cc for the suite and its bounds): attacks
// the server already held, kept so that it goes on holding them, each with the canary running.
//
//   framing abuse       TCP length 0 and over max_frame_bytes, a WebSocket header announcing
//                       more than max_frame_bytes (up to 1 TiB): closed on the header alone,
//                       before any payload is read or buffered.
//   silent connections  2,000 connections (TCP and upgraded WebSocket) that never log in: all
//                       closed with 4002 by the login timeout, and the server forgets them.
//   slowloris           HTTP requests whose headers or body never finish: dropped by
//                       websocketpp's open-handshake timeout (its default, 5 s from the
//                       connect, trickled bytes do not extend it); other requests are served.
//   slow readers        logged-in TCP and WebSocket clients that stop reading while messages
//                       pour in: closed at send_queue_bytes (4004); the sender is never refused.
//   before login        any command but login and ping before login: 401 unauthenticated,
//                       then close 4002.
#include <doctest/doctest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/attack.h"
#include "support/attack_socket.h"
#include "support/canary.h"
#include "support/test_server.h"

namespace im::test::attack {
namespace {

using Clock = std::chrono::steady_clock;

// --- framing abuse -----------------------------------------------------------------------------

// A violation on the header is answered at once; this is only the wait on a loaded machine.
constexpr int kCloseWithinMs = 3000;

TEST_CASE("attack: framing abuse - TCP length 0 or over the limit - WebSocket length 1 TiB") {
  im::ServerOptions o;
  o.max_frame_bytes = 4096;
  TestServer ts(o);
  Canary canary(CanaryFor(ts));
  REQUIRE(canary.Start());
  struct Abuse {
    bool ws;
    std::string header;  // sent alone: the payload it announces never follows
    int code;
  };
  const std::vector<Abuse> abuses = {
      {false, TcpHeader(0), 4003},
      {false, TcpHeader(4097), 1009},
      {false, TcpHeader(0xffffffffu), 1009},
      {true, WsClientHeader(0x1, 4097), 1009},
      {true, WsClientHeader(0x1, uint64_t{1} << 40), 1009},
  };
  const auto start = Clock::now();
  size_t rounds = 0, wrong = 0;
  std::string first_wrong;
  while (rounds < 30 || Clock::now() - start < kMinAttackTime) {
    ++rounds;
    for (const Abuse& a : abuses) {
      Socket s(a.ws ? ts.server().http_port() : ts.server().tcp_port());
      REQUIRE(s.ok());
      if (a.ws) REQUIRE(s.UpgradeToWebSocket());
      REQUIRE(s.Write(a.header));
      std::optional<int> code;
      if (a.ws) {
        // The close frame; the TCP close waits for the client's close frame.
        s.ReadUntil([&](const std::string& in) { return (code = WsCloseCode(in)).has_value(); },
                    kCloseWithinMs);
      } else {
        // session.closed, then the server's half-close.
        s.ReadUntilClosed(kCloseWithinMs);
        code = TcpClosedCode(s.in());
        if (!s.peer_closed()) code.reset();
      }
      if (code != a.code && wrong++ == 0) {
        first_wrong = (a.ws ? "ws " : "tcp ") + Printable(a.header) + " -> " +
                      (code ? std::to_string(*code) : std::string("no close"));
      }
    }
  }
  INFO(rounds << " rounds; first wrong answer: " << first_wrong);
  CHECK(wrong == 0);
  CheckCanary(canary.Stop());
  CheckStillServing(ts);
}

// --- silent connections ------------------------------------------------------------------------

constexpr size_t kSilentConnections = 2000;  // every fourth an upgraded WebSocket
constexpr int64_t kSilentLoginTimeoutMs = 1000;
// Past the login timeout: the sweep interval, and a loaded machine.
constexpr auto kSilentCloseSlack = std::chrono::milliseconds(4000);

TEST_CASE("attack: 2000 connections that never log in are closed by the login timeout") {
  ServerOptions o;
  o.login_timeout_ms = kSilentLoginTimeoutMs;
  o.sweep_interval_ms = 100;
  TestServer ts(o);
  Canary canary(CanaryFor(ts));  // logged in before the attack
  REQUIRE(canary.Start());
  struct Silent {
    std::unique_ptr<Socket> socket;
    bool ws;
    std::optional<int> code;  // the close code the server sent
    bool closed = false;
  };
  std::vector<Silent> silent;
  silent.reserve(kSilentConnections);
  for (size_t i = 0; i < kSilentConnections; ++i) {
    const bool ws = i % 4 == 0;
    auto s = std::make_unique<Socket>(ws ? ts.server().http_port() : ts.server().tcp_port());
    REQUIRE(s->ok());
    if (ws) REQUIRE(s->UpgradeToWebSocket());
    silent.push_back(Silent{std::move(s), ws, std::nullopt, false});
  }
  const auto all_open = Clock::now();
  const auto deadline =
      all_open + std::chrono::milliseconds(kSilentLoginTimeoutMs) + kSilentCloseSlack;
  size_t open = silent.size();
  std::vector<pollfd> fds;
  std::vector<Silent*> waiting;
  while (open > 0 && Clock::now() < deadline) {
    fds.clear();
    waiting.clear();
    for (Silent& s : silent) {
      if (s.closed) continue;
      fds.push_back(pollfd{s.socket->fd(), POLLIN, 0});
      waiting.push_back(&s);
    }
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Silent& s = *waiting[i];
      s.socket->ReadAvailable();
      s.code = s.ws ? WsCloseCode(s.socket->in()) : TcpClosedCode(s.socket->in());
      // WebSocket: the close frame (the TCP close waits for the client's); TCP: the
      // session.closed push, or the end of the connection.
      if ((s.ws && s.code) || s.socket->peer_closed()) {
        s.closed = true;
        --open;
      }
    }
  }
  size_t wrong_code = 0;
  for (const Silent& s : silent) wrong_code += s.closed && s.code != 4002;
  INFO(open << " of " << silent.size() << " still open " << MsSince(all_open)
            << " ms after the last connected; " << wrong_code << " closed without 4002");
  CHECK(open == 0);
  CHECK(wrong_code == 0);
  // Once the clients let go, the server holds none of them: only the canary's two.
  silent.clear();
  CHECK(WaitFor(
      [&] {
        return Metric(ts, "im_connections{transport=\"tcp\"}") +
                   Metric(ts, "im_connections{transport=\"ws\"}") ==
               2;
      },
      std::chrono::milliseconds(5000)));
  CheckCanary(canary.Stop());
  CheckStillServing(ts);
}

// --- slowloris ---------------------------------------------------------------------------------

constexpr size_t kSlowRequests = 200;
// websocketpp's open-handshake timeout (its default; libim does not change it): the request
// line, the headers and the body must all arrive within it, from the connect on.
constexpr auto kHttpRequestTimeout = std::chrono::milliseconds(5000);
constexpr auto kSlowlorisSlack = std::chrono::milliseconds(3000);

TEST_CASE("attack: slowloris - HTTP requests whose headers or body never finish are dropped") {
  TestServer ts;
  Canary canary(CanaryFor(ts));
  REQUIRE(canary.Start());
  struct Slow {
    std::unique_ptr<Socket> socket;
    std::string trickle;  // sent again and again, never finishing the request
    Clock::time_point opened;
    double closed_after_ms = -1;
  };
  std::vector<Slow> slow;
  for (size_t i = 0; i < kSlowRequests; ++i) {
    auto s = std::make_unique<Socket>(ts.server().http_port());
    REQUIRE(s->ok());
    const auto opened = Clock::now();
    std::string head, trickle;
    switch (i % 4) {
      case 0:  // headers that never end
        head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        trickle = "X-Slow: y\r\n";
        break;
      case 1:  // a WebSocket handshake that never ends
        head = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";
        trickle = "X-Slow: y\r\n";
        break;
      case 2:  // a body that never ends
        head = "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{";
        trickle = " ";
        break;
      default:  // a request line that never ends
        head = "GET /v1/users/";
        trickle = "a";
    }
    REQUIRE(s->Write(head));
    slow.push_back(Slow{std::move(s), trickle, opened});
  }
  const auto deadline = Clock::now() + kHttpRequestTimeout + kSlowlorisSlack;
  size_t open = slow.size();
  HttpAnswer healthz;
  double healthz_ms = -1;
  const auto start = Clock::now();
  while (open > 0 && Clock::now() < deadline) {
    for (Slow& s : slow) {
      if (s.closed_after_ms >= 0) continue;
      if (s.socket->TryWrite(s.trickle.data(), s.trickle.size()) < 0 ||
          !s.socket->ReadAvailable()) {
        s.closed_after_ms = MsSince(s.opened);
        --open;
      }
    }
    if (healthz_ms < 0 && Clock::now() - start > std::chrono::milliseconds(1000)) {
      // Meanwhile an ordinary request is answered.
      const auto t = Clock::now();
      healthz = Http(ts.server().http_port(), "GET", "/healthz");
      healthz_ms = MsSince(t);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  double latest = -1;  // ms from connect to close, of the last to close
  for (const Slow& s : slow) latest = std::max(latest, s.closed_after_ms);
  INFO(open << " of " << slow.size() << " still open; the last closed after " << latest
            << " ms; /healthz meanwhile: " << healthz.status << " in " << healthz_ms << " ms");
  CHECK(open == 0);
  CHECK(latest <=
        std::chrono::duration<double, std::milli>(kHttpRequestTimeout + kSlowlorisSlack).count());
  CHECK(healthz.status == 200);
  CHECK(healthz_ms < kCanaryMaxLatencyMs);
  CheckCanary(canary.Stop());
  CheckStillServing(ts);
}

// --- slow readers ------------------------------------------------------------------------------

constexpr size_t kSlowReaderQueueBytes = 256 * 1024;
// Enough 16 KB messages to fill the kernel's socket buffers on loopback and then the send
// queue, for both readers, with room to spare (a few hundred do); the flood stops once both
// are closed. Under the default chat.send rate limit of a connection.
constexpr size_t kMaxFloodMessages = 960;
constexpr auto kMaxFloodTime = std::chrono::seconds(15);

TEST_CASE("attack: slow readers over TCP and WebSocket are closed at the send queue bound") {
  ServerOptions o;
  o.send_queue_bytes = kSlowReaderQueueBytes;
  TestServer ts(o);
  Canary canary(CanaryFor(ts));
  REQUIRE(canary.Start());
  // Log in, then never read again, behind a small receive window.
  Socket slow_tcp(ts.server().tcp_port(), 4096);
  REQUIRE(slow_tcp.Write(
      TcpFrame(R"({"id":1,"cmd":"login","body":{"token":")" + ts.Token("slow-tcp") + R"("}})")));
  Socket slow_ws(ts.server().http_port(), 4096);
  REQUIRE(slow_ws.UpgradeToWebSocket());
  REQUIRE(slow_ws.Write(WsClientFrame(
      0x1, R"({"id":1,"cmd":"login","body":{"token":")" + ts.Token("slow-ws") + R"("}})")));
  REQUIRE(WaitFor([&] { return Online(ts, "slow-tcp") && Online(ts, "slow-ws"); },
                  std::chrono::milliseconds(5000)));

  RawClient flooder(ts.TcpUrl());
  REQUIRE(flooder.Login(ts.Token("flooder")) == 0);
  const std::string body(16000, 'z');
  const auto start = Clock::now();
  size_t sent = 0, refused = 0;
  // Until both are closed for being slow (their sessions end up to 2 s later).
  auto slow_closes = [&] {
    return Metric(ts, "im_slow_consumer_closes_total{transport=\"tcp\"}") +
           Metric(ts, "im_slow_consumer_closes_total{transport=\"ws\"}");
  };
  while (sent < kMaxFloodMessages && Clock::now() - start < kMaxFloodTime && slow_closes() < 2) {
    std::vector<std::string> batch;
    for (int i = 0; i < 32; ++i, ++sent) {
      batch.push_back(R"({"id":)" + std::to_string(sent + 10) +
                      R"(,"cmd":"chat.send","body":{"to":")" + (sent % 2 ? "slow-tcp" : "slow-ws") +
                      R"(","cid":"f)" + std::to_string(sent) + R"(","body":")" + body + R"("}})");
    }
    std::map<int, size_t> codes = Pipeline(flooder, batch);
    refused += batch.size() - codes[0];
  }
  // The TCP socket is dropped at most 2 s after its close began; WebSocket's close handshake
  // is cut short after 1 s.
  const bool gone = WaitFor([&] { return !Online(ts, "slow-tcp") && !Online(ts, "slow-ws"); },
                            std::chrono::milliseconds(5000));
  INFO(sent << " messages of " << body.size() << " bytes in " << MsSince(start) << " ms");
  CHECK(gone);
  CHECK(refused == 0);  // the sender is never slowed down or refused
  CHECK(Metric(ts, "im_slow_consumer_closes_total{transport=\"tcp\"}") == 1);
  CHECK(Metric(ts, "im_slow_consumer_closes_total{transport=\"ws\"}") == 1);
  // Their messages wait in their inboxes for a later sync.
  auto fetched = ts.deps().inbox->Fetch({"default", "slow-tcp"}, 0, 1);
  REQUIRE(fetched.ok());
  CHECK(fetched->last_seq >= 10);
  CheckCanary(canary.Stop());
  CheckStillServing(ts);
}

// --- commands before login ---------------------------------------------------------------------

constexpr size_t kBeforeLoginConnections = 200;

TEST_CASE("attack: commands before login are refused with 401 and close 4002") {
  TestServer ts;
  Canary canary(CanaryFor(ts));
  REQUIRE(canary.Start());
  const char* const kCommands[] = {"chat.send",    "chat.sync",  "chat.ack",       "logout",
                                   "group.create", "group.join", "no.such.command"};
  const auto start = Clock::now();
  size_t wrong = 0, n = 0;
  std::string first_wrong;
  while (n < kBeforeLoginConnections || Clock::now() - start < kMinAttackTime) {
    const std::string url = n % 2 ? ts.WsUrl() : ts.TcpUrl();
    const char* cmd = kCommands[n % 7];
    ++n;
    RawClient c(url);
    REQUIRE(c.connected());
    rapidjson::Document d;
    const bool answered =
        c.Call(1, cmd, R"({"to":"bob","cid":"x","body":"x","seq":1,"name":"g","group":"g"})", &d);
    const int code = answered ? CodeOf(d) : -1;
    const std::string error = answered ? ErrorOf(d) : "";
    const int closed = c.WaitClosed();
    if ((code != 401 || error != "unauthenticated" || closed != 4002) && wrong++ == 0) {
      first_wrong = url + " " + cmd + ": " + std::to_string(code) + " " + error + ", close " +
                    std::to_string(closed);
    }
  }
  INFO(n << " connections; first wrong: " << first_wrong);
  CHECK(wrong == 0);
  CheckCanary(canary.Stop());
  CheckStillServing(ts);
}

}  // namespace
}  // namespace im::test::attack
