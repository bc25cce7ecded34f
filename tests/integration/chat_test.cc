// Login, kick and 1:1 chat over real sockets (TCP and WebSocket) against an in-process server.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/content_filter.h"
#include "support/test_server.h"

using namespace im::test;  // NOLINT: the test support helpers

namespace {

std::string SendBody(const std::string& to, const std::string& cid, const std::string& body) {
  return R"({"to":")" + to + R"(","cid":")" + cid + R"(","body":")" + body + R"("})";
}

struct Pair {
  const char* a;
  const char* b;
};

}  // namespace

TEST_CASE("login: accepted with a valid token - refused (and retryable) with a bad one") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
      CAPTURE(url);
      RawClient c(url);
      REQUIRE(c.connected());
      rapidjson::Document d;
      REQUIRE(c.Call(1, "login", R"({"token":"nonsense"})", &d));
      CHECK(CodeOf(d) == 401);
      CHECK(ErrorOf(d) == "invalid_token");
      REQUIRE(c.Call(2, "login", R"({"token":")" + ts.ExpiredToken("alice") + R"("})", &d));
      CHECK(CodeOf(d) == 401);
      CHECK(ErrorOf(d) == "token_expired");
      REQUIRE(c.Call(3, "login", R"({"token":")" + ts.Token("alice") + R"("})", &d));
      CHECK(CodeOf(d) == 0);
      const auto& body = d["body"];
      CHECK(Str(body, "user") == "alice");
      CHECK(Str(body, "tenant") == "default");
      CHECK_FALSE(Str(body, "session").empty());
      CHECK(Str(body, "node") == ts.server().node_id());
      CHECK_FALSE(Str(body, "epoch").empty());
      CHECK(body["last_seq"].GetUint64() == 0);
      CHECK(body["acked_seq"].GetUint64() == 0);
      CHECK(body["heartbeat_s"].GetInt() == 30);
      CHECK(body["server_ms"].GetInt64() > 0);
      const std::string session = Str(body, "session");
      REQUIRE(c.Call(4, "ping", "", &d));
      CHECK(CodeOf(d) == 0);
      CHECK(d["body"]["server_ms"].GetInt64() > 0);
      // A second login refreshes the token of the same session; another user is refused.
      REQUIRE(c.Call(5, "login", R"({"token":")" + ts.Token("alice") + R"("})", &d));
      CHECK(CodeOf(d) == 0);
      CHECK(Str(d["body"], "session") == session);
      REQUIRE(c.Call(7, "login", R"({"token":")" + ts.Token("mallory") + R"("})", &d));
      CHECK(CodeOf(d) == 409);
      CHECK(ErrorOf(d) == "already_logged_in");
      // So is the same user on another device.
      REQUIRE(
          c.Call(8, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"other"})", &d));
      CHECK(CodeOf(d) == 409);
      CHECK(ErrorOf(d) == "already_logged_in");
      REQUIRE(c.Call(6, "logout", "", &d));
      CHECK(CodeOf(d) == 0);
      CHECK(c.WaitClosed() == 1000);
    }
  });
}

TEST_CASE("kick: a second login of the same device kicks the first - which receives nothing more") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    for (Pair p : {Pair{"tcp", "ws"}, Pair{"ws", "tcp"}}) {
      CAPTURE(p.a);
      auto url = [&](const char* kind) {
        return std::string(kind) == "tcp" ? ts.TcpUrl() : ts.WsUrl();
      };
      RawClient bob(ts.WsUrl());
      REQUIRE(bob.Login(ts.Token("bob")) == 0);
      RawClient old_conn(url(p.a));
      REQUIRE(old_conn.Login(ts.Token("alice")) == 0);
      RawClient new_conn(url(p.b));
      REQUIRE(new_conn.Login(ts.Token("alice")) == 0);
      // Sent as soon as the new login is answered, while the old socket may still be closing: the
      // kick is complete by then, so the message reaches the new connection only.
      rapidjson::Document d;
      REQUIRE(
          bob.Call(1, "chat.send", SendBody("alice", std::string("k-") + p.a, "after kick"), &d));
      REQUIRE(CodeOf(d) == 0);
      REQUIRE(new_conn.WaitPush("chat.message", &d));
      CHECK(Str(d["body"], "body") == "after kick");

      // Everything the old socket received after its login: the kick, then (TCP) the close notice.
      CHECK(old_conn.WaitClosed() == 4001);
      std::vector<std::string> got;
      while (auto t = old_conn.NextText(0)) {
        REQUIRE(im::test::ParseJson(*t, &d));
        got.push_back(Str(d, "cmd"));
        if (got.back() == "session.kicked") CHECK(Str(d["body"], "reason") == "login_elsewhere");
      }
      std::vector<std::string> expected = {"session.kicked"};
      if (std::string(p.a) == "tcp") expected.push_back("session.closed");
      CHECK(got == expected);
      // The old socket's close never removed the new session.
      auto sessions = ts.deps().sessions->Find({"default", "alice"});
      REQUIRE(sessions.ok());
      CHECK(sessions->size() == 1);
    }
  });
}

TEST_CASE("kick: other devices stay - per-account policy kicks them too") {
  {
    TestServer ts;
    RawClient phone(ts.TcpUrl()), laptop(ts.WsUrl());
    REQUIRE(phone.Login(ts.Token("alice"), "phone") == 0);
    REQUIRE(laptop.Login(ts.Token("alice"), "laptop") == 0);
    CHECK(phone.WaitClosed(300) == -1);
    CHECK(ts.deps().sessions->Find({"default", "alice"})->size() == 2);
  }
  {
    im::ServerOptions o;
    o.kick_policy = im::KickPolicy::kPerAccount;
    TestServer ts(o);
    RawClient phone(ts.TcpUrl()), laptop(ts.WsUrl());
    REQUIRE(phone.Login(ts.Token("alice"), "phone") == 0);
    REQUIRE(laptop.Login(ts.Token("alice"), "laptop") == 0);
    CHECK(phone.WaitClosed() == 4001);
    CHECK(laptop.WaitClosed(300) == -1);
  }
}

TEST_CASE("limits: a user online on max_devices_per_user devices cannot add one more") {
  im::ServerOptions o;
  o.max_devices_per_user = 2;
  TestServer ts(o);
  RawClient phone(ts.TcpUrl()), laptop(ts.WsUrl()), tablet(ts.TcpUrl());
  REQUIRE(phone.Login(ts.Token("alice"), "phone") == 0);
  REQUIRE(laptop.Login(ts.Token("alice"), "laptop") == 0);
  rapidjson::Document d;
  REQUIRE(tablet.Call(1, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"tablet"})",
                      &d));
  CHECK(CodeOf(d) == 429);
  CHECK(ErrorOf(d) == "too_many_devices");
  CHECK(tablet.WaitClosed(200) == -1);  // open for another try
  CHECK(ts.deps().sessions->Find({"default", "alice"})->size() == 2);
  // Other users are not affected, and a device already online may log in again (a kick).
  RawClient bob(ts.TcpUrl());
  CHECK(bob.Login(ts.Token("bob"), "tablet") == 0);
  RawClient phone2(ts.WsUrl());
  REQUIRE(phone2.Login(ts.Token("alice"), "phone") == 0);
  CHECK(phone.WaitClosed() == 4001);
  // Once a device logs out, the tablet gets in on the same connection.
  REQUIRE(laptop.Call(2, "logout", "", &d));
  CHECK(laptop.WaitClosed() == 1000);
  REQUIRE(tablet.Call(3, "login", R"({"token":")" + ts.Token("alice") + R"(","device":"tablet"})",
                      &d));
  CHECK(CodeOf(d) == 0);
  CHECK(ts.deps().sessions->Find({"default", "alice"})->size() == 2);
}

TEST_CASE("chat: 1:1 both ways across TCP and WebSocket - with seqs - echo to other devices") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    RawClient alice(ts.TcpUrl()), alice_tab(ts.WsUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice"), "phone") == 0);
    REQUIRE(alice_tab.Login(ts.Token("alice"), "tab") == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);

    rapidjson::Document d;
    REQUIRE(alice.Call(1, "chat.send",
                       R"({"to":"bob","cid":"c1","body":"hi bob","extra":{"k":[1,"x"]}})", &d));
    REQUIRE(CodeOf(d) == 0);
    std::string mid = Str(d["body"], "mid");
    CHECK_FALSE(mid.empty());
    CHECK(d["body"]["seq"].GetUint64() == 1);
    CHECK(d["body"]["ts"].GetInt64() > 0);

    REQUIRE(bob.WaitPush("chat.message", &d));
    const auto& m = d["body"];
    CHECK(m["seq"].GetUint64() == 1);
    CHECK(Str(m, "mid") == mid);
    CHECK(Str(m, "from") == "alice");
    CHECK(Str(m, "to") == "bob");
    CHECK(Str(m, "type") == "text");
    CHECK(Str(m, "body") == "hi bob");
    CHECK(m["extra"]["k"][1].GetString() == std::string("x"));
    // The sender's other device sees its own message with the sender's seq.
    REQUIRE(alice_tab.WaitPush("chat.message", &d));
    CHECK(Str(d["body"], "mid") == mid);
    CHECK(d["body"]["seq"].GetUint64() == 1);

    REQUIRE(bob.Call(2, "chat.send", SendBody("alice", "r1", "hi alice"), &d));
    REQUIRE(CodeOf(d) == 0);
    CHECK(d["body"]["seq"].GetUint64() == 2);
    REQUIRE(alice.WaitPush("chat.message", &d));
    CHECK(Str(d["body"], "body") == "hi alice");
    CHECK(d["body"]["seq"].GetUint64() == 2);
    // The sending device got no push of its own message.
    CHECK_FALSE(alice.WaitPush("chat.message", &d, 200));
  });
}

TEST_CASE("chat: the same cid is stored once and answers the first mid and seq") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    RawClient alice(ts.TcpUrl()), bob(ts.TcpUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    rapidjson::Document first, again;
    REQUIRE(alice.Call(1, "chat.send", SendBody("bob", "same", "one"), &first));
    REQUIRE(alice.Call(2, "chat.send", SendBody("bob", "same", "two"), &again));
    REQUIRE(CodeOf(again) == 0);
    CHECK(Str(again["body"], "mid") == Str(first["body"], "mid"));
    CHECK(again["body"]["seq"].GetUint64() == first["body"]["seq"].GetUint64());
    rapidjson::Document d;
    REQUIRE(bob.WaitPush("chat.message", &d));
    CHECK(Str(d["body"], "body") == "one");
    CHECK_FALSE(bob.WaitPush("chat.message", &d, 300));
    REQUIRE(bob.Call(3, "chat.sync", "", &d));
    CHECK(d["body"]["messages"].Size() == 1);
  });
}

TEST_CASE("chat: 10000 messages arrive in order with increasing seq") {
  ForEachStorage([](const Storage& storage) {
    im::ServerOptions o;  // as fast as the server goes: past the default chat.send rate limits
    o.chat_connection_rate = 0;
    o.chat_user_rate = 0;
    TestServer ts(o, storage);
    RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    const int kCount = 10000;
    const int kWindow = 100;
    int acked = 0;
    int sent = 0;
    rapidjson::Document d;
    while (acked < kCount) {
      while (sent < kCount && sent - acked < kWindow) {
        alice.Send(R"({"id":)" + std::to_string(sent) + R"(,"cmd":"chat.send","body":)" +
                   SendBody("bob", "m" + std::to_string(sent), "n" + std::to_string(sent)) + "}");
        ++sent;
      }
      REQUIRE(alice.WaitResponse(static_cast<uint32_t>(acked), &d));
      REQUIRE(CodeOf(d) == 0);
      CHECK(d["body"]["seq"].GetUint64() == static_cast<uint64_t>(acked) + 1);
      ++acked;
    }
    uint64_t last_seq = 0;
    for (int i = 0; i < kCount; ++i) {
      auto text = bob.NextText();
      REQUIRE(text.has_value());
      REQUIRE(im::test::ParseJson(*text, &d));
      REQUIRE(Str(d, "cmd") == "chat.message");
      uint64_t seq = d["body"]["seq"].GetUint64();
      REQUIRE(seq == last_seq + 1);
      REQUIRE(Str(d["body"], "body") == "n" + std::to_string(i));
      last_seq = seq;
    }
    CHECK(last_seq == kCount);
  });
}

TEST_CASE("chat: with several io threads - concurrent pairs over TCP and WebSocket - every "
          "message arrives once, in order, intact") {
  im::ServerOptions o;
  o.io_threads = 4;  // connections get strands of their own (one io thread needs none)
  o.worker_threads = 2;
  o.chat_connection_rate = 0;
  o.chat_user_rate = 0;
  TestServer ts(o, [](im::ServerDeps&) {});
  constexpr int kPairs = 12;
  constexpr int kCount = 300;
  constexpr int kWindow = 20;
  std::vector<std::unique_ptr<RawClient>> senders, receivers;
  for (int p = 0; p < kPairs; ++p) {
    const std::string url = p % 2 == 0 ? ts.TcpUrl() : ts.WsUrl();
    senders.push_back(std::make_unique<RawClient>(url));
    receivers.push_back(std::make_unique<RawClient>(p % 3 == 0 ? ts.WsUrl() : ts.TcpUrl()));
    REQUIRE(senders.back()->Login(ts.Token("s" + std::to_string(p))) == 0);
    REQUIRE(receivers.back()->Login(ts.Token("r" + std::to_string(p))) == 0);
  }
  std::vector<std::string> failures(kPairs * 2);
  std::vector<std::thread> threads;
  for (int p = 0; p < kPairs; ++p) {
    threads.emplace_back([&, p] {
      RawClient& c = *senders[p];
      rapidjson::Document d;
      int sent = 0;
      for (int acked = 0; acked < kCount; ++acked) {
        for (; sent < kCount && sent - acked < kWindow; ++sent) {
          // Bodies of different sizes: some frames are split across reads and writes.
          const std::string body = std::to_string(sent) + std::string(sent % 7 * 300, 'x');
          c.Send(R"({"id":)" + std::to_string(sent) + R"(,"cmd":"chat.send","body":)" +
                 SendBody("r" + std::to_string(p), "c" + std::to_string(sent), body) + "}");
        }
        if (!c.WaitResponse(static_cast<uint32_t>(acked), &d) || CodeOf(d) != 0) {
          failures[p * 2] = "no ack for " + std::to_string(acked);
          return;
        }
      }
    });
    threads.emplace_back([&, p] {
      rapidjson::Document d;
      for (int i = 0; i < kCount; ++i) {
        auto text = receivers[p]->NextText();
        const std::string want = std::to_string(i) + std::string(i % 7 * 300, 'x');
        if (!text || !im::test::ParseJson(*text, &d) || Str(d, "cmd") != "chat.message" ||
            Str(d["body"], "body") != want ||
            d["body"]["seq"].GetUint64() != static_cast<uint64_t>(i) + 1) {
          failures[p * 2 + 1] = "message " + std::to_string(i) + ": " + text.value_or("none");
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& f : failures) CHECK_MESSAGE(f.empty(), f);
}

TEST_CASE("chat: an offline receiver syncs later - in pages - ack moves acked_seq") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    RawClient alice(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    rapidjson::Document d;
    for (int i = 0; i < 250; ++i) {
      REQUIRE(alice.Call(static_cast<uint32_t>(i), "chat.send",
                         SendBody("bob", "o" + std::to_string(i), "m" + std::to_string(i)), &d));
      REQUIRE(CodeOf(d) == 0);
    }
    std::string epoch;
    {
      RawClient bob(ts.TcpUrl());
      REQUIRE(bob.Call(1, "login", R"({"token":")" + ts.Token("bob") + R"(","device":"pc"})", &d));
      REQUIRE(CodeOf(d) == 0);
      CHECK(d["body"]["last_seq"].GetUint64() == 250);
      CHECK(d["body"]["acked_seq"].GetUint64() == 0);
      epoch = Str(d["body"], "epoch");
      uint64_t after = 0;
      int got = 0;
      bool more = true;
      uint32_t id = 2;
      while (more) {
        REQUIRE(bob.Call(id++, "chat.sync",
                         R"({"after":)" + std::to_string(after) + R"(,"limit":100})", &d));
        REQUIRE(CodeOf(d) == 0);
        const auto& b = d["body"];
        CHECK(Str(b, "epoch") == epoch);
        CHECK(b["last_seq"].GetUint64() == 250);
        CHECK(b["first_seq"].GetUint64() == 1);
        CHECK(b["gap"].GetBool() == false);
        for (const auto& m : b["messages"].GetArray()) {
          CHECK(m["seq"].GetUint64() == after + 1);
          CHECK(std::string(m["body"].GetString()) == "m" + std::to_string(got));
          after = m["seq"].GetUint64();
          ++got;
        }
        more = b["more"].GetBool();
      }
      CHECK(got == 250);
      REQUIRE(bob.Call(id++, "chat.ack", R"({"seq":200})", &d));
      CHECK(CodeOf(d) == 0);
      REQUIRE(bob.Call(id++, "chat.ack", R"({"seq":100})", &d));  // lower: ignored
      CHECK(CodeOf(d) == 0);
      REQUIRE(bob.Call(id++, "chat.ack", R"({"seq":9999})", &d));
      CHECK(CodeOf(d) == 400);
      CHECK(ErrorOf(d) == "bad_request");
      REQUIRE(bob.Call(id++, "chat.sync", R"({"after":250})", &d));
      CHECK(d["body"]["messages"].Size() == 0);
      CHECK(d["body"]["more"].GetBool() == false);
    }
    RawClient bob_again(ts.WsUrl());
    REQUIRE(
        bob_again.Call(1, "login", R"({"token":")" + ts.Token("bob") + R"(","device":"pc"})", &d));
    REQUIRE(CodeOf(d) == 0);
    CHECK(d["body"]["acked_seq"].GetUint64() == 200);
    CHECK(Str(d["body"], "epoch") == epoch);
    RawClient bob_phone(ts.WsUrl());
    REQUIRE(bob_phone.Call(1, "login", R"({"token":")" + ts.Token("bob") + R"(","device":"phone"})",
                           &d));
    CHECK(d["body"]["acked_seq"].GetUint64() == 0);  // acks are per device
  });
}

TEST_CASE("tenants: the same user id in two tenants are different users") {
  ForEachStorage([](const Storage& storage) {
    TestServer ts({}, storage);
    RawClient alice(ts.TcpUrl()), bob_default(ts.TcpUrl()), bob_acme(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice", "acme")) == 0);
    REQUIRE(bob_default.Login(ts.Token("bob")) == 0);
    REQUIRE(bob_acme.Login(ts.Token("bob", "acme")) == 0);
    rapidjson::Document d;
    REQUIRE(alice.Call(1, "chat.send", SendBody("bob", "t1", "acme only"), &d));
    REQUIRE(CodeOf(d) == 0);
    REQUIRE(bob_acme.WaitPush("chat.message", &d));
    CHECK(Str(d["body"], "body") == "acme only");
    CHECK_FALSE(bob_default.WaitPush("chat.message", &d, 300));
    REQUIRE(bob_default.Call(2, "chat.sync", "", &d));
    CHECK(d["body"]["messages"].Size() == 0);
  });
}

TEST_CASE("tokens: a session ends when its token expires unless a fresh login refreshed it") {
  // The server and the verifier read a clock the test moves, so the expiry does not depend on
  // how long the connects and logins take.
  im::test::FakeClock clock;
  im::ServerOptions o;
  o.token_grace_ms = 0;
  o.sweep_interval_ms = 50;
  o.clock = &clock;
  auto keys =
      im::NewStaticKeyStore({{"default", std::string(32, 'k')}, {"acme", std::string(32, 'a')}});
  TestServer ts(o, [&](im::ServerDeps& d) {
    im::Hs256Options h;
    h.leeway_s = 0;
    h.clock = &clock;
    d.tokens = im::NewHs256Verifier(keys, h);
  });
  const int64_t now = clock.NowMs();
  RawClient expiring(ts.TcpUrl()), refreshed(ts.WsUrl());
  REQUIRE(expiring.Login(*im::SignHs256Token(*keys, {"default", "tess"}, 60, now)) == 0);
  REQUIRE(refreshed.Login(*im::SignHs256Token(*keys, {"default", "ruth"}, 60, now)) == 0);
  REQUIRE(refreshed.Login(ts.Token("ruth")) == 0);  // a fresh token on the same connection
  // Not before exp: several sweeps pass and both stay.
  CHECK(expiring.WaitClosed(300) == -1);
  clock.Advance(59000);
  CHECK(expiring.WaitClosed(300) == -1);
  // Past exp: the sweep kicks the session whose token ran out, not the refreshed one.
  clock.Advance(2000);
  rapidjson::Document d;
  REQUIRE(expiring.WaitPush("session.kicked", &d, 5000));
  CHECK(Str(d["body"], "reason") == "token_expired");
  CHECK(expiring.WaitClosed() == 4002);
  CHECK_FALSE(refreshed.closed());
  REQUIRE(refreshed.Call(1, "ping", "", &d));
  CHECK(CodeOf(d) == 0);
}

TEST_CASE("events: the business log records login, kick, failures and rejections without tokens") {
  std::string path = "/tmp/im-events-" + std::to_string(::getpid()) + ".log";
  std::remove(path.c_str());
  im::ServerOptions o;
  o.event_log_path = path;
  std::string token = "";
  {
    TestServer ts(o, [](im::ServerDeps& d) {
      d.filter = *im::NewWordFilter({"forbidden"}, im::FilterMode::kReject);
    });
    token = ts.Token("alice");
    RawClient first(ts.TcpUrl()), second(ts.WsUrl()), bad(ts.TcpUrl());
    REQUIRE(first.Login(token, "phone") == 0);
    REQUIRE(second.Login(token, "phone") == 0);  // kicks the first
    CHECK(first.WaitClosed() == 4001);
    CHECK(bad.Login("not.a.token") == 401);
    rapidjson::Document d;
    REQUIRE(second.Call(1, "chat.send", R"({"to":"bob","cid":"x","body":"a forbidden word"})", &d));
    CHECK(CodeOf(d) == 422);
    CHECK(ErrorOf(d) == "content_rejected");
    REQUIRE(second.Call(2, "group.create", R"({"name":"g","members":[],"gid":"g1"})", &d));
    REQUIRE(second.Call(3, "logout", "", &d));
    CHECK(second.WaitClosed() == 1000);
  }
  std::ifstream in(path);
  std::string line;
  std::map<std::string, int> count;
  std::string all;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    REQUIRE(im::test::ParseJson(line, &d));
    CHECK(d["ts"].GetInt64() > 0);
    CHECK_FALSE(Str(d, "node").empty());
    std::string event = Str(d, "event");
    ++count[event];
    if (event == "login") {
      CHECK(Str(d, "user") == "alice");
      CHECK(Str(d, "device") == "phone");
      CHECK(Str(d, "remote").rfind("127.0.0.1:", 0) == 0);
    }
    if (event == "kick") CHECK(Str(d, "reason") == "login_elsewhere");
    if (event == "login_failed") CHECK(Str(d, "reason") == "invalid_token");
    if (event == "message_rejected") CHECK(Str(d, "reason") == "content_rejected: forbidden");
    all += line;
  }
  CHECK(count["login"] == 2);
  CHECK(count["kick"] == 1);
  CHECK(count["login_failed"] == 1);
  CHECK(count["message_rejected"] == 1);
  CHECK(count["group_created"] == 1);
  CHECK(count["logout"] >= 1);
  CHECK(all.find(token) == std::string::npos);
  CHECK(all.find("not.a.token") == std::string::npos);
  std::remove(path.c_str());
}
