// im::Client, the C++ SDK, against a real server over TCP and WebSocket.
#include <doctest/doctest.h>

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "im/client.h"
#include "support/test_server.h"

using im::test::TestServer;

namespace {

// Collects pushes delivered on the client's thread.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<im::ReceivedMessage> messages;
  std::vector<std::string> kicks;
  int closed_code = -1;

  void Attach(im::Client& c) {
    c.OnMessage([this](const im::ReceivedMessage& m) {
      std::lock_guard<std::mutex> lock(mu);
      messages.push_back(m);
      cv.notify_all();
    });
    c.OnKicked([this](const std::string& reason) {
      std::lock_guard<std::mutex> lock(mu);
      kicks.push_back(reason);
      cv.notify_all();
    });
    c.OnClosed([this](int code, const std::string&) {
      std::lock_guard<std::mutex> lock(mu);
      closed_code = code;
      cv.notify_all();
    });
  }
  bool WaitMessages(size_t n, int ms = 5000) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return messages.size() >= n; });
  }
  bool WaitClosed(int ms = 5000) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return closed_code != -1; });
  }
};

im::ClientOptions Url(const std::string& url) {
  im::ClientOptions o;
  o.url = url;
  return o;
}

}  // namespace

TEST_CASE("client: login - send - push - sync and ack over both transports") {
  TestServer ts;
  im::Client alice(Url(ts.TcpUrl())), bob(Url(ts.WsUrl()));
  Inbox bob_inbox;
  bob_inbox.Attach(bob);
  REQUIRE(alice.Connect().ok());
  REQUIRE(bob.Connect().ok());
  auto a = alice.Login(ts.Token("alice"));
  REQUIRE(a.ok());
  CHECK(a->user == "alice");
  CHECK(a->tenant == "default");
  CHECK(a->heartbeat_s == 30);
  REQUIRE(bob.Login(ts.Token("bob")).ok());

  im::OutgoingMessage m;
  m.to = "bob";
  m.body = "hello";
  m.extra = R"({"reply_to":"x"})";
  auto ack = alice.Send(m);
  REQUIRE(ack.ok());
  CHECK(ack->seq == 1);
  CHECK(ack->mid != 0);
  REQUIRE(bob_inbox.WaitMessages(1));
  {
    std::lock_guard<std::mutex> lock(bob_inbox.mu);
    const auto& got = bob_inbox.messages[0];
    CHECK(got.seq == 1);
    CHECK(got.message.mid == ack->mid);
    CHECK(got.message.from == "alice");
    CHECK(got.message.body == "hello");
    CHECK(got.message.extra == R"({"reply_to":"x"})");
  }
  for (int i = 0; i < 20; ++i) REQUIRE(alice.SendText("bob", "n" + std::to_string(i)).ok());
  auto page = bob.Sync(0, 10);
  REQUIRE(page.ok());
  CHECK(page->messages.size() == 10);
  CHECK(page->more);
  CHECK(page->last_seq == 21);
  CHECK_FALSE(page->gap);
  CHECK(page->messages[1].message.body == "n0");
  REQUIRE(bob.Ack(21).ok());
  auto bad_ack = bob.Ack(22);
  CHECK(bad_ack.code() == im::Code::kBadRequest);
  auto ping = alice.Ping();
  REQUIRE(ping.ok());
  CHECK(*ping > 0);
  // A refused send reports the server's code.
  m.body = std::string(20000, 'x');
  CHECK(alice.Send(m).status().code() == im::Code::kTooLarge);
  m.extra = "[not an object]";
  CHECK(alice.Send(m).status().code() == im::Code::kBadRequest);
  REQUIRE(alice.Logout().ok());
}

TEST_CASE("client: a kick reaches the callbacks with the reason and the close code") {
  TestServer ts;
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    CAPTURE(url);
    im::Client first(Url(url)), second(Url(url));
    Inbox inbox;
    inbox.Attach(first);
    REQUIRE(first.Connect().ok());
    REQUIRE(first.Login(ts.Token("carol")).ok());
    REQUIRE(second.Connect().ok());
    REQUIRE(second.Login(ts.Token("carol")).ok());
    REQUIRE(inbox.WaitClosed());
    std::lock_guard<std::mutex> lock(inbox.mu);
    CHECK(inbox.kicks == std::vector<std::string>{"login_elsewhere"});
    CHECK(inbox.closed_code == 4001);
    CHECK_FALSE(first.connected());
  }
}

TEST_CASE("client: a refused login can be retried and requests time out") {
  TestServer ts;
  im::Client c(Url(ts.WsUrl()));
  REQUIRE(c.Connect().ok());
  auto bad = c.Login("x.y.z");
  CHECK(bad.status().code() == im::Code::kUnauthenticated);
  CHECK(c.Login(ts.Token("dave")).ok());

  // A server that accepts and never answers.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  im::ClientOptions o = Url("tcp://127.0.0.1:" + std::to_string(silent.local_endpoint().port()));
  o.request_timeout_ms = 200;
  im::Client mute(o);
  REQUIRE(mute.Connect().ok());
  auto r = mute.Login("t");
  CHECK(r.status().code() == im::Code::kUnavailable);
  CHECK(r.status().error() == "timeout");

  im::Client nowhere(Url("tcp://127.0.0.1:1"));
  CHECK_FALSE(nowhere.Connect().ok());
  im::Client bad_url(Url("http://x"));
  CHECK(bad_url.Connect().code() == im::Code::kBadRequest);
}

TEST_CASE("client: a send over the server's rate limit waits retry_after_ms and is stored once") {
  im::ServerOptions o;
  o.chat_connection_burst = 2;  // two sends at once, then one every 200 ms
  o.chat_connection_rate = 5;
  TestServer ts(o);
  im::Client alice(Url(ts.TcpUrl()));
  REQUIRE(alice.Connect().ok());
  REQUIRE(alice.Login(ts.Token("alice")).ok());
  const auto began = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    auto ack = alice.SendText("bob", "r" + std::to_string(i));
    REQUIRE_MESSAGE(ack.ok(), ack.status().ToString());
    CHECK(ack->seq == static_cast<uint64_t>(i) + 1);  // each stored once, in order
  }
  // Four sends past the burst at 5/s: about 800 ms of waiting, told by the server.
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - began)
                        .count();
  CHECK(took >= 600);
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(ts.server().http_port(), &m));
  const auto it = m.find(R"(im_rate_limited_total{limit="chat_connection"})");
  REQUIRE(it != m.end());
  // A client that resent at once would be refused hundreds of times; one that waits the
  // retry_after_ms it was given, about once per send past the burst.
  CHECK(it->second >= 4);
  CHECK(it->second <= 12);
}

// While a resync runs, pushes wait for it in a buffer of max_held_pushes. Past it they are
// dropped (counted), and a sync after the resync fetches them: every message still reaches
// OnMessage once, in seq order.
TEST_CASE("client: pushes past max_held_pushes during a resync are fetched again, none lost") {
  TestServer ts;
  const im::UserKey bob{"default", "bob"};
  for (int i = 0; i < 3; ++i)
    REQUIRE(ts.server().SendToUser(bob, "ann", "old" + std::to_string(i)).ok());
  std::string epoch;
  {
    im::Client first(Url(ts.TcpUrl()));
    REQUIRE(first.Connect().ok());
    auto info = first.Login(ts.Token("bob"));
    REQUIRE(info.ok());
    epoch = info->epoch;
  }
  constexpr size_t kHeld = 4, kPushed = 20;
  im::ClientOptions o = Url(ts.TcpUrl());
  o.max_held_pushes = kHeld;
  im::Client c(o);
  // The first message (from the catch-up resync) blocks the client's delivery until `go`, so
  // the resync is still running while the pushes come.
  std::mutex mu;
  std::condition_variable cv;
  bool blocked = false, go = false;
  std::vector<im::ReceivedMessage> got;
  c.OnMessage([&](const im::ReceivedMessage& m) {
    std::unique_lock<std::mutex> lock(mu);
    got.push_back(m);
    blocked = true;
    cv.notify_all();
    cv.wait(lock, [&] { return go; });
  });
  c.ResumeFrom(epoch, 0);
  REQUIRE(c.Connect().ok());
  REQUIRE(c.Login(ts.Token("bob")).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return blocked; }));
  }
  for (size_t i = 0; i < kPushed; ++i) {
    REQUIRE(ts.server().SendToUser(bob, "ann", "new" + std::to_string(i)).ok());
  }
  // kHeld wait; the rest are dropped.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (c.dropped_pushes() < kPushed - kHeld && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(c.dropped_pushes() == kPushed - kHeld);
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  std::unique_lock<std::mutex> lock(mu);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return got.size() >= 3 + kPushed; }));
  lock.unlock();
  (void)c.Ping();  // a round trip: a late duplicate would have reached OnMessage by now
  lock.lock();
  REQUIRE(got.size() == 3 + kPushed);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].seq == i + 1);
    CHECK(got[i].message.body ==
          (i < 3 ? "old" + std::to_string(i) : "new" + std::to_string(i - 3)));
  }
  CHECK(c.synced_seq() == 3 + kPushed);
}

// The route endpoint's answer is bounded: the client dials at most 64 of its gateways (each
// dial may take connect_timeout_ms), then `url`. Here the 65th gateway is the only live one.
TEST_CASE("client: at most 64 gateways of a route answer are dialed") {
  TestServer ts;
  std::string closed;  // a loopback port nothing listens on: a dial there is refused at once
  {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed = "tcp://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }
  for (const size_t live_at : {size_t{64}, size_t{63}}) {
    CAPTURE(live_at);
    std::string gateways;
    for (size_t i = 0; i < 70; ++i) {
      gateways +=
          std::string(i ? "," : "") + R"({"tcp":")" + (i == live_at ? ts.TcpUrl() : closed) + "\"}";
    }
    const std::string body = R"({"gateways":[)" + gateways + "]}";
    // A one-answer HTTP endpoint on loopback.
    asio::io_context io;
    asio::ip::tcp::acceptor http(io,
                                 asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::thread answer([&] {
      asio::error_code ec;
      asio::ip::tcp::socket s(io);
      http.accept(s, ec);
      if (ec) return;
      asio::streambuf request;
      asio::read_until(s, request, "\r\n\r\n", ec);
      asio::write(s,
                  asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\nConnection: close\r\n\r\n" + body),
                  ec);
    });
    im::ClientOptions o = Url(closed);
    o.route_url = "http://127.0.0.1:" + std::to_string(http.local_endpoint().port()) +
                  "/v1/route?tenant=default&user=bob";
    im::Client c(o);
    const im::Status s = c.Connect();
    answer.join();
    // The 64th gateway (index 63) is dialed; the 65th is not, and `url` is refused.
    CHECK_MESSAGE(s.ok() == (live_at < 64), s.ToString());
  }
}

// The host API's sends (Server::SendToUser, SendToGroup) reach a client with every field.
TEST_CASE("client: host-side sends to a user and to a group arrive with their fields") {
  TestServer ts;
  im::Client bob(Url(ts.TcpUrl()));
  Inbox inbox;
  inbox.Attach(bob);
  REQUIRE(bob.Connect().ok());
  REQUIRE(bob.Login(ts.Token("bob")).ok());
  auto created = bob.Request("group.create", R"({"name":"g","members":[],"gid":"g1"})");
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  REQUIRE(ts.server().SendToUser({"default", "bob"}, "ann", "to bob", "note").ok());
  REQUIRE(ts.server().SendToGroup({"default", "g1"}, "", "to g1", "text", "host-1").ok());
  // After the group's own system message ("bob created the group").
  REQUIRE(inbox.WaitMessages(3));
  std::lock_guard<std::mutex> lock(inbox.mu);
  REQUIRE(inbox.messages.size() == 3);
  CHECK(inbox.messages[0].message.type == "system");
  const im::Message& direct = inbox.messages[1].message;
  CHECK(direct.from == "ann");
  CHECK(direct.to == "bob");
  CHECK(direct.group == "");
  CHECK(direct.type == "note");
  CHECK(direct.body == "to bob");
  const im::Message& group = inbox.messages[2].message;
  CHECK(group.from == "");
  CHECK(group.group == "g1");
  CHECK(group.type == "text");
  CHECK(group.body == "to g1");
}
