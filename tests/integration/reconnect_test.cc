// im::Client reconnects, resyncs and retries sends across a server restart: every message is
// acked once and reaches the receiver exactly once, in order.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "im/client.h"
#include "support/test_server.h"

namespace {

struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<im::ReceivedMessage> got;
  std::atomic<int> reconnecting{0};
  std::atomic<int> reconnected{0};
  std::atomic<int> closed{0};

  void Attach(im::Client& c) {
    c.OnMessage([this](const im::ReceivedMessage& m) {
      std::lock_guard<std::mutex> lock(mu);
      got.push_back(m);
      cv.notify_all();
    });
    c.OnReconnecting([this](int, int64_t) { ++reconnecting; });
    c.OnReconnected([this](const im::LoginInfo&) { ++reconnected; });
    c.OnClosed([this](int, const std::string&) { ++closed; });
  }
  bool WaitCount(size_t n, int ms) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return got.size() >= n; });
  }
};

}  // namespace

TEST_CASE("reconnect: a server restart mid-stream loses and duplicates nothing") {
  auto keys = im::NewStaticKeyStore({{"default", std::string(32, 'k')}});
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();  // outlives both server instances
  deps.tokens = im::NewHs256Verifier(keys);
  im::ServerOptions o;
  o.tcp_listen = "127.0.0.1:0";
  o.http_listen = "127.0.0.1:0";
  auto first = std::make_unique<im::Server>(o, deps);
  REQUIRE(first->Start().ok());
  o.tcp_listen = "127.0.0.1:" + std::to_string(first->tcp_port());
  o.http_listen = "127.0.0.1:" + std::to_string(first->http_port());

  auto token = [&](const char* user) {
    return *im::SignHs256Token(*keys, {"default", user}, 3600, im::SystemClock()->NowMs());
  };
  im::ClientOptions co;
  co.reconnect_min_ms = 50;
  co.reconnect_max_ms = 400;
  co.request_timeout_ms = 1000;
  co.url = "tcp://" + o.tcp_listen;
  im::Client alice(co);
  co.url = "ws://" + o.http_listen + "/ws";
  im::Client bob(co);
  Collector alice_events, bob_inbox;
  alice_events.Attach(alice);
  bob_inbox.Attach(bob);
  REQUIRE(alice.Connect().ok());
  REQUIRE(bob.Connect().ok());
  REQUIRE(alice.Login(token("alice")).ok());
  REQUIRE(bob.Login(token("bob")).ok());

  const int kCount = 300;
  std::atomic<int> acked{0};
  std::vector<uint64_t> mids(kCount);
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) {
      im::OutgoingMessage m;
      m.to = "bob";
      m.cid = "r" + std::to_string(i);
      m.body = "m" + std::to_string(i);
      auto ack = alice.Send(m);
      if (!ack.ok()) {
        FAIL_CHECK("send " << i << " failed: " << ack.status().ToString());
        continue;
      }
      mids[static_cast<size_t>(i)] = ack->mid;
      ++acked;
    }
  });
  while (acked < 100) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  first->Stop();
  first.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  im::Server second(o, deps);
  REQUIRE(second.Start().ok());
  sender.join();
  CHECK(acked == kCount);
  CHECK(alice_events.reconnected >= 1);
  CHECK(alice_events.closed == 0);

  REQUIRE(bob_inbox.WaitCount(kCount, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more may arrive
  std::lock_guard<std::mutex> lock(bob_inbox.mu);
  REQUIRE(bob_inbox.got.size() == kCount);
  std::map<std::string, int> seen;
  uint64_t last = 0;
  for (size_t i = 0; i < bob_inbox.got.size(); ++i) {
    const auto& m = bob_inbox.got[i];
    CHECK(m.seq > last);
    last = m.seq;
    CHECK(m.message.body == "m" + std::to_string(i));
    CHECK(m.message.mid == mids[i]);
    ++seen[m.message.body];
  }
  CHECK(seen.size() == kCount);
  // The store holds each message once: retries under the same cid were deduplicated.
  auto inbox = deps.inbox->Fetch({"default", "bob"}, 0, 500);
  REQUIRE(inbox.ok());
  CHECK(inbox->entries.size() == kCount);
  CHECK(bob.synced_seq() == kCount);
}

TEST_CASE("reconnect: no reconnect after a kick or a logout") {
  im::test::TestServer ts;
  im::ClientOptions co;
  co.url = ts.TcpUrl();
  co.reconnect_min_ms = 20;
  im::Client a(co), b(co);
  Collector ea;
  ea.Attach(a);
  REQUIRE(a.Connect().ok());
  REQUIRE(a.Login(ts.Token("erin")).ok());
  REQUIRE(b.Connect().ok());
  REQUIRE(b.Login(ts.Token("erin")).ok());
  for (int i = 0; i < 100 && ea.closed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(ea.closed == 1);
  CHECK(ea.reconnecting == 0);
  CHECK_FALSE(a.connected());

  Collector eb;
  eb.Attach(b);
  REQUIRE(b.Logout().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(eb.reconnecting == 0);
}

TEST_CASE("reconnect: pushes missed while disconnected arrive through the resync") {
  auto keys = im::NewStaticKeyStore({{"default", std::string(32, 'k')}});
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();
  deps.tokens = im::NewHs256Verifier(keys);
  im::ServerOptions o;
  o.tcp_listen = "127.0.0.1:0";
  o.http_listen = "";
  auto server = std::make_unique<im::Server>(o, deps);
  REQUIRE(server->Start().ok());
  o.tcp_listen = "127.0.0.1:" + std::to_string(server->tcp_port());
  im::ClientOptions co;
  co.url = "tcp://" + o.tcp_listen;
  co.reconnect_min_ms = 200;
  co.reconnect_max_ms = 200;
  im::Client bob(co);
  Collector inbox;
  inbox.Attach(bob);
  REQUIRE(bob.Connect().ok());
  REQUIRE(bob.Login(*im::SignHs256Token(*keys, {"default", "bob"}, 3600,
                                        im::SystemClock()->NowMs())).ok());
  server->Stop();
  server = std::make_unique<im::Server>(o, deps);
  REQUIRE(server->Start().ok());
  // Sent while bob is away (his client waits ~200 ms before redialing).
  for (int i = 0; i < 20; ++i) {
    REQUIRE(server->SendToUser({"default", "bob"}, "system", "n" + std::to_string(i)).ok());
  }
  REQUIRE(inbox.WaitCount(20, 5000));
  // OnReconnected follows the resync's messages.
  for (int i = 0; i < 200 && inbox.reconnected == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard<std::mutex> lock(inbox.mu);
  CHECK(inbox.got.size() == 20);
  CHECK(inbox.got.front().message.body == "n0");
  CHECK(inbox.got.back().message.body == "n19");
  CHECK(inbox.reconnected == 1);
}

TEST_CASE("reconnect: ResumeFrom catches up from a saved position after login") {
  im::test::TestServer ts;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(ts.server().SendToUser({"default", "fay"}, "gus", "old" + std::to_string(i)).ok());
  }
  im::ClientOptions co;
  co.url = ts.TcpUrl();
  std::string epoch;
  {
    im::Client first(co);
    REQUIRE(first.Connect().ok());
    auto info = first.Login(ts.Token("fay"));
    REQUIRE(info.ok());
    epoch = info->epoch;
    CHECK(first.synced_seq() == 5);  // without ResumeFrom the backlog is the app's to sync
  }
  im::Client c(co);
  Collector inbox;
  inbox.Attach(c);
  c.ResumeFrom(epoch, 2);
  REQUIRE(c.Connect().ok());
  REQUIRE(c.Login(ts.Token("fay")).ok());
  REQUIRE(inbox.WaitCount(3, 5000));
  std::lock_guard<std::mutex> lock(inbox.mu);
  REQUIRE(inbox.got.size() == 3);
  CHECK(inbox.got[0].message.body == "old2");
  CHECK(inbox.got[2].message.body == "old4");
  CHECK(c.synced_seq() == 5);
}
