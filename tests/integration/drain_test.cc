// Draining (Server::Drain; imd does it on SIGTERM): the sends already queued for storage are
// stored and acked, later ones are refused with 503, new logins with 503 draining; the HTTP
// port answers 503 (health, readiness, WebSocket handshakes) until the drain ends, then stops;
// every session gets session.kicked{drain} and then close 1001 "server draining". After a restart on the same
// LevelDB storage every acked send is stored exactly once, and every refused one, sent again
// under its cid, is stored once too.
//
// The storage is held shut while the drain starts, so the test sees each phase for as long as
// it needs, without timing assumptions.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/gated_inbox.h"
#include "support/inbox_read.h"
#include "support/raw_socket.h"
#include "support/temp_dir.h"
#include "support/test_server.h"
#include "support/wait_until.h"

namespace {

using im::test::CodeOf;
using im::test::GatedInbox;
using im::test::RawClient;
using im::test::RawSocket;
using im::test::TestServer;
using im::test::WaitUntil;

// The status line of GET `path` on the HTTP port; "" when the connection is refused.
std::string HttpStatus(uint16_t port, const std::string& path) {
  std::string r = im::test::HttpRoundTrip(
      port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  return r.substr(0, r.find("\r\n"));
}

// The status line the server answers a WebSocket handshake with.
std::string HandshakeStatus(uint16_t port) {
  RawSocket s(port);
  return s.connected() ? s.WsHandshake() : std::string();
}

std::string SendFrame(uint32_t id, const std::string& to, const std::string& cid) {
  return "{\"id\":" + std::to_string(id) + R"(,"cmd":"chat.send","body":{"to":")" + to +
         R"(","cid":")" + cid + R"(","body":")" + cid + "\"}}";
}

std::string StringAt(const rapidjson::Document& d, const char* object, const char* field) {
  if (!d.HasMember(object) || !d[object].IsObject()) return "";
  const rapidjson::Value& o = d[object];
  return o.HasMember(field) && o[field].IsString() ? o[field].GetString() : "";
}

// One sending user, its receiver, and what became of each send.
struct Sender {
  std::string user;
  std::string to;
  bool tcp = true;
  std::unique_ptr<RawClient> client;
  std::vector<std::pair<uint32_t, std::string>> sent;  // (request id, cid), in send order
  std::map<std::string, std::string> acked;             // cid -> mid
  std::vector<std::string> refused;                     // cids answered 503, in send order
};

constexpr int kQueued = 25;  // sends per sender queued for storage before the drain

}  // namespace

TEST_CASE("drain: queued sends acked, new ones 503, HTTP answers 503 until the end, every "
          "session kicked then closed 1001 - after a restart all stored exactly once") {
  im::test::TempDir dir;
  std::shared_ptr<GatedInbox> gate;
  // Every send goes to the commit queue. With commit_on_worker, a first send that finds the
  // committer idle is stored on its worker, held there at the shut gate, and the sender's
  // next commands wait behind it in the connection's turn, not queued for storage: the drain
  // would answer them 503 (and under a slow build, it did).
  im::ServerOptions options;
  options.commit_on_worker = false;
  auto ts = std::make_unique<TestServer>(options, [&](im::ServerDeps& deps) {
    im::test::UseLevelDb(dir.path())(deps);
    gate = std::make_shared<GatedInbox>(deps.inbox);
    deps.inbox = gate;
  });
  const uint16_t http = ts->server().http_port();

  std::vector<Sender> senders(2);
  senders[0].user = "alice";
  senders[0].to = "carol";
  senders[1].user = "bob";
  senders[1].to = "dave";
  senders[1].tcp = false;
  for (Sender& s : senders) {
    s.client = std::make_unique<RawClient>(s.tcp ? ts->TcpUrl() : ts->WsUrl());
    REQUIRE(s.client->Login(ts->Token(s.user)) == 0);
  }
  // A WebSocket session that will not answer the server's close frame: the drain waits for it,
  // which holds the drain open while the test probes the HTTP port.
  RawSocket lingerer(http);
  REQUIRE(lingerer.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(lingerer.Write(im::test::WsClientFrame(
      0x1, R"({"id":1,"cmd":"login","body":{"token":")" + ts->Token("erin") + "\"}}")));
  std::vector<im::test::WsFrame> frames;
  REQUIRE(lingerer.ReadUntil([&](const std::string&) {
    for (auto& f : im::test::TakeWsFrames(&lingerer.in())) frames.push_back(std::move(f));
    return !frames.empty();
  }));
  rapidjson::Document d;
  REQUIRE(im::test::ParseJson(frames[0].payload, &d));
  REQUIRE(CodeOf(d) == 0);
  frames.clear();

  // Phase 1: storage shut, kQueued sends per sender queued for it.
  gate->Close(GatedInbox::Op::kAppend);
  for (Sender& s : senders) {
    for (int k = 0; k < kQueued; ++k) {
      const uint32_t id = static_cast<uint32_t>(k + 1);
      const std::string cid = s.user + "-" + std::to_string(k);
      s.sent.emplace_back(id, cid);
      s.client->Send(SendFrame(id, s.to, cid));
    }
  }
  REQUIRE(WaitUntil([&] {
    std::map<std::string, double> m;
    return im::test::ScrapeMetrics(http, &m) && m.count("im_commit_queue_depth") == 1 &&
           m["im_commit_queue_depth"] + static_cast<double>(gate->held_appends()) == 2 * kQueued;
  }));

  // Phase 2: the drain begins and waits for the queued sends.
  std::thread drainer([&] { ts->server().Drain(60000); });
  const std::string kUnavailable = "HTTP/1.1 503 Service Unavailable";
  REQUIRE(WaitUntil([&] { return HttpStatus(http, "/healthz") == kUnavailable; }));
  CHECK(HttpStatus(http, "/readyz") == kUnavailable);
  CHECK(HandshakeStatus(http) == kUnavailable);
  // A login now is 503 draining (on a new TCP connection: TCP accepts until the kicks are
  // done).
  {
    RawClient late(ts->TcpUrl());
    REQUIRE(late.connected());
    REQUIRE(late.Call(1, "login", R"({"token":")" + ts->Token("frank") + R"("})", &d));
    CHECK(CodeOf(d) == 503);
    CHECK(im::test::ErrorOf(d) == "draining");
    CHECK(d.HasMember("retry_after_ms"));
  }
  // A send now is refused with 503. One that raced in before the commit queue closed waits
  // behind the shut storage (no answer yet) and is settled with the others below.
  for (Sender& s : senders) {
    bool refused = false;
    for (uint32_t j = 0; j < 20 && !refused; ++j) {
      const uint32_t id = 1000 + j;
      const std::string cid = s.user + "-late" + std::to_string(j);
      s.sent.emplace_back(id, cid);
      s.client->Send(SendFrame(id, s.to, cid));
      if (s.client->WaitResponse(id, &d, 300)) {
        CHECK(CodeOf(d) == 503);
        CHECK(im::test::ErrorOf(d) == "unavailable");
        s.refused.push_back(cid);
        refused = true;
      }
    }
    CHECK(refused);
  }

  // Phase 3: storage open. Every send has an answer: the queued ones acked, the rest 503.
  gate->Open(GatedInbox::Op::kAppend);
  for (Sender& s : senders) {
    CAPTURE(s.user);
    for (const auto& [id, cid] : s.sent) {
      if (std::find(s.refused.begin(), s.refused.end(), cid) != s.refused.end()) continue;
      CAPTURE(cid);
      REQUIRE(s.client->WaitResponse(id, &d, 10000));
      if (CodeOf(d) == 0) {
        s.acked[cid] = StringAt(d, "body", "mid");
        CHECK(!s.acked[cid].empty());
      } else {
        CHECK(CodeOf(d) == 503);
        s.refused.push_back(cid);
      }
    }
    for (int k = 0; k < kQueued; ++k) CHECK(s.acked.count(s.user + "-" + std::to_string(k)) == 1);
    // Then session.kicked{drain}, then close 1001.
    REQUIRE(s.client->WaitPush("session.kicked", &d));
    CHECK(StringAt(d, "body", "reason") == "drain");
    CHECK(s.client->WaitClosed(10000) == 1001);
    if (s.tcp) {
      REQUIRE(s.client->WaitPush("session.closed", &d));
      CHECK(StringAt(d, "body", "reason") == "server draining");
    }
  }
  // The lingerer gets the same: the kick, then the close frame (which it does not answer).
  REQUIRE(lingerer.ReadUntil([&](const std::string&) {
    for (auto& f : im::test::TakeWsFrames(&lingerer.in())) frames.push_back(std::move(f));
    return !frames.empty() && frames.back().opcode == 0x8;
  }));
  REQUIRE(frames.size() == 2);
  REQUIRE(im::test::ParseJson(frames[0].payload, &d));
  CHECK(std::string(d["cmd"].GetString()) == "session.kicked");
  CHECK(StringAt(d, "body", "reason") == "drain");
  CHECK(im::test::WsCloseCode(frames[1]) == 1001);
  CHECK(frames[1].payload.substr(2) == "server draining");
  // Connections are closing and the drain waits for the lingerer: still 503, not refused.
  CHECK(HttpStatus(http, "/healthz") == kUnavailable);
  CHECK(HttpStatus(http, "/readyz") == kUnavailable);
  CHECK(HandshakeStatus(http) == kUnavailable);

  // Phase 4: the last connection goes, the drain ends, the HTTP port stops answering.
  lingerer.Write(im::test::WsClientFrame(0x8, frames[1].payload.substr(0, 2)));
  drainer.join();
  CHECK(HttpStatus(http, "/healthz").empty());

  // Phase 5: a restart on the same storage. The refused sends go again under their cids, and
  // so does one acked send, which the dedup answers with its first mid.
  ts.reset();
  gate.reset();  // it holds the LevelDB inbox open
  ts = std::make_unique<TestServer>(im::ServerOptions{}, im::test::UseLevelDb(dir.path()));
  for (Sender& s : senders) {
    CAPTURE(s.user);
    RawClient c(s.tcp ? ts->TcpUrl() : ts->WsUrl());
    REQUIRE(c.Login(ts->Token(s.user)) == 0);
    uint32_t id = 5000;
    for (const std::string& cid : s.refused) {
      REQUIRE(c.Call(++id, "chat.send",
                     R"({"to":")" + s.to + R"(","cid":")" + cid + R"(","body":")" + cid + "\"}",
                     &d));
      REQUIRE(CodeOf(d) == 0);
      s.acked[cid] = StringAt(d, "body", "mid");
    }
    const std::string again = s.user + "-0";
    REQUIRE(c.Call(++id, "chat.send",
                   R"({"to":")" + s.to + R"(","cid":")" + again + R"(","body":")" + again + "\"}",
                   &d));
    REQUIRE(CodeOf(d) == 0);
    CHECK(StringAt(d, "body", "mid") == s.acked[again]);

    // Expected in both inboxes, in this order: the sends acked before the restart, in send
    // order, then the refused ones as sent again.
    std::vector<std::pair<std::string, std::string>> expected;  // (body, mid)
    for (const auto& [ignored, cid] : s.sent) {
      if (std::find(s.refused.begin(), s.refused.end(), cid) == s.refused.end()) {
        expected.emplace_back(cid, s.acked.at(cid));
      }
    }
    for (const std::string& cid : s.refused) expected.emplace_back(cid, s.acked.at(cid));
    for (const std::string& owner : {s.user, s.to}) {
      CAPTURE(owner);
      RawClient reader(ts->TcpUrl());
      REQUIRE(reader.Login(ts->Token(owner), "reader") == 0);
      std::vector<im::test::SyncedMessage> inbox;
      REQUIRE(im::test::SyncAll(reader, &inbox));
      std::vector<std::pair<std::string, std::string>> stored;
      for (const auto& m : inbox) {
        CHECK(m.from == s.user);
        stored.emplace_back(m.body, m.mid);
      }
      CHECK(stored == expected);
    }
  }
}
