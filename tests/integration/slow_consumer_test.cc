// Slow consumers through im::Server, over TCP and WebSocket: a logged-in receiver that stops
// reading while a sender floods it is closed with 4004 "too slow" (seen on the wire once it
// reads again: the TCP session.closed push, the WebSocket close frame), the sender is never
// slowed or refused, others chat on, and afterwards every acked message is in the receiver's
// inbox exactly once, in send order. A client that floods WebSocket pings without reading the
// pongs, without logging in, is closed the same way.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/inbox_read.h"
#include "support/raw_socket.h"
#include "support/temp_dir.h"
#include "support/test_server.h"
#include "support/wait_until.h"

namespace {

using im::test::CodeOf;
using im::test::RawClient;
using im::test::RawSocket;
using im::test::TestServer;
using im::test::WaitUntil;

constexpr size_t kQueueBound = 64 * 1024;


double SlowConsumerCloses(TestServer& ts, const char* transport) {
  std::map<std::string, double> m;
  if (!im::test::ScrapeMetrics(ts.server().http_port(), &m)) return -1;
  auto it = m.find(std::string("im_slow_consumer_closes_total{transport=\"") + transport + "\"}");
  return it == m.end() ? -1 : it->second;
}

// A receiver on a raw socket with a small receive buffer, so that once it stops reading the
// server's queue for it fills. Its reads are the test's to make.
class RawReceiver {
 public:
  RawReceiver(TestServer& ts, bool tcp)
      : tcp_(tcp),
        socket_(tcp ? ts.server().tcp_port() : ts.server().http_port(), 4096) {}

  // Logs in as `user` and reads the response; the socket is not read again until ReadToClose.
  bool Login(const std::string& token) {
    if (!tcp_ && socket_.WsHandshake().rfind("HTTP/1.1 101", 0) != 0) return false;
    const std::string login = R"({"id":1,"cmd":"login","body":{"token":")" + token + "\"}}";
    if (!socket_.Write(tcp_ ? im::test::TcpFrame(login) : im::test::WsClientFrame(0x1, login))) {
      return false;
    }
    std::vector<Frame> frames;
    if (!socket_.ReadUntil([&](const std::string&) {
          Take(&frames);
          return !frames.empty();
        })) {
      return false;
    }
    rapidjson::Document d;
    return frames.size() == 1 && im::test::ParseJson(frames[0].text, &d) && CodeOf(d) == 0;
  }

  // Reads every frame up to the close: the text frames, and the close code and reason (the
  // session.closed push on TCP, the close frame on WebSocket). False when the close did not
  // come within `timeout_ms`.
  bool ReadToClose(std::vector<std::string>* texts, int* code, std::string* reason,
                   int timeout_ms = 10000) {
    std::vector<Frame> frames;
    bool closed = false;
    socket_.ReadUntil(
        [&](const std::string&) {
          Take(&frames);
          for (Frame& f : frames) {
            if (closed) return true;
            if (f.close) {
              closed = true;
              *code = f.code;
              *reason = f.text;
            } else {
              texts->push_back(std::move(f.text));
            }
          }
          frames.clear();
          return closed;
        },
        timeout_ms);
    if (closed && !tcp_) {  // answer the close handshake
      socket_.Write(im::test::WsClientFrame(0x8, std::string{static_cast<char>(*code >> 8),
                                                             static_cast<char>(*code & 0xff)}));
    }
    return closed;
  }

 private:
  struct Frame {
    std::string text;  // the JSON text; the reason for a close
    bool close = false;
    int code = 0;
  };

  // Moves the complete frames read so far into `out`.
  void Take(std::vector<Frame>* out) {
    if (tcp_) {
      for (std::string& text : im::test::TakeTcpFrames(&socket_.in())) {
        Frame f;
        rapidjson::Document d;
        if (im::test::ParseJson(text, &d) && d.HasMember("cmd") && d["cmd"].IsString() &&
            std::string(d["cmd"].GetString()) == "session.closed") {
          f.close = true;
          f.code = d["body"]["code"].GetInt();
          f.text = d["body"]["reason"].GetString();
        } else {
          f.text = std::move(text);
        }
        out->push_back(std::move(f));
      }
      return;
    }
    for (im::test::WsFrame& w : im::test::TakeWsFrames(&socket_.in())) {
      Frame f;
      if (w.opcode == 0x8) {
        f.close = true;
        f.code = im::test::WsCloseCode(w);
        f.text = w.payload.size() > 2 ? w.payload.substr(2) : "";
      } else {
        f.text = std::move(w.payload);
      }
      out->push_back(std::move(f));
    }
  }

  const bool tcp_;
  RawSocket socket_;
};

void CheckSlowConsumer(bool tcp) {
  const char* transport = tcp ? "tcp" : "ws";
  im::test::TempDir dir;
  const std::string events = dir.path() + "/events.log";
  im::ServerOptions o;
  o.send_queue_bytes = kQueueBound;
  o.event_log_path = events;
  TestServer ts(o);

  RawReceiver slow(ts, tcp);
  REQUIRE(slow.Login(ts.Token("slow")));
  RawClient sender(ts.TcpUrl()), alice(ts.WsUrl()), bob(ts.TcpUrl());
  REQUIRE(sender.Login(ts.Token("sender")) == 0);
  REQUIRE(alice.Login(ts.Token("alice")) == 0);
  REQUIRE(bob.Login(ts.Token("bob")) == 0);

  // The flood: batches of 50 pipelined sends of 2000 bytes each, every one acked, until the
  // server reports the slow consumer closed.
  const std::string body(2000, 'z');
  std::vector<std::string> acked;  // mids, in send order
  rapidjson::Document d;
  uint32_t id = 0;
  for (int batch = 0; batch < 400 && SlowConsumerCloses(ts, transport) < 1; ++batch) {
    const uint32_t first = id + 1;
    for (int i = 0; i < 50; ++i) {
      ++id;
      sender.Send("{\"id\":" + std::to_string(id) +
                  R"(,"cmd":"chat.send","body":{"to":"slow","cid":"c)" + std::to_string(id) +
                  R"(","body":")" + body + "\"}}");
    }
    for (uint32_t k = first; k <= id; ++k) {
      REQUIRE(sender.WaitResponse(k, &d, 10000));
      REQUIRE(CodeOf(d) == 0);  // the sender is never slowed down or refused
      acked.push_back(d["body"]["mid"].GetString());
    }
  }
  CAPTURE(acked.size());
  REQUIRE(SlowConsumerCloses(ts, transport) == 1);
  CHECK(SlowConsumerCloses(ts, tcp ? "ws" : "tcp") == 0);
  // The slow reader reads at last: pushes of the acked messages, in order, then the close. It
  // reads at once: a peer still reading nothing when the close times out (1 s over WebSocket,
  // 2 s over TCP) is dropped without the close (protocol.md section 2).
  std::vector<std::string> texts;
  int code = 0;
  std::string reason;
  REQUIRE(slow.ReadToClose(&texts, &code, &reason));
  CHECK(code == 4004);
  CHECK(reason == "too slow");
  // Others chat on.
  REQUIRE(alice.Call(1, "chat.send", R"({"to":"bob","cid":"a1","body":"hi"})", &d));
  CHECK(CodeOf(d) == 0);
  CHECK(bob.WaitPush("chat.message", &d));
  // The push that did not fit the queue was dropped: fewer pushes than acked messages.
  REQUIRE(texts.size() < acked.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    REQUIRE(im::test::ParseJson(texts[i], &d));
    CHECK(std::string(d["cmd"].GetString()) == "chat.message");
    CHECK(std::string(d["body"]["mid"].GetString()) == acked[i]);
  }
  CHECK(WaitUntil([&] { return ts.deps().sessions->Find({"default", "slow"})->empty(); }));

  // Every acked message is in the inbox exactly once, in send order.
  RawClient again(ts.TcpUrl());
  REQUIRE(again.Login(ts.Token("slow")) == 0);
  std::vector<im::test::SyncedMessage> inbox;
  REQUIRE(im::test::SyncAll(again, &inbox, /*limit=*/20));  // a page fits the 64 KiB bound
  std::vector<std::string> stored;
  for (const auto& m : inbox) stored.push_back(m.mid);
  CHECK(stored == acked);

  // Operators see it: one business event naming the user (the event log's writer thread
  // flushes it within 100 ms).
  std::vector<std::string> slow_events;
  CHECK(WaitUntil([&] {
    slow_events.clear();
    std::ifstream in(events);
    for (std::string line; std::getline(in, line);) {
      if (line.find(R"("event":"slow_consumer_closed")") != std::string::npos) {
        slow_events.push_back(line);
      }
    }
    return !slow_events.empty();
  }));
  REQUIRE(slow_events.size() == 1);
  CHECK(slow_events[0].find(R"("user":"slow")") != std::string::npos);
  CHECK(slow_events[0].find(R"("remote":"127.0.0.1:)") != std::string::npos);
  CHECK(slow_events[0].find("send queue over 65536 bytes") != std::string::npos);
}

}  // namespace

TEST_CASE("slow consumer: tcp - a receiver that stops reading is closed with 4004, every acked "
          "message stays in its inbox once, in order") {
  CheckSlowConsumer(/*tcp=*/true);
}

TEST_CASE("slow consumer: ws - a receiver that stops reading is closed with 4004, every acked "
          "message stays in its inbox once, in order") {
  CheckSlowConsumer(/*tcp=*/false);
}

TEST_CASE("slow consumer: ws - pings flooded before login, pongs never read: closed with 4004") {
  im::ServerOptions o;
  o.send_queue_bytes = kQueueBound;
  TestServer ts(o);
  RawSocket flood(ts.server().http_port(), 4096);
  REQUIRE(flood.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  // Pings of 125 bytes (the control-frame maximum), 64 per write; unbounded pongs would hold
  // tens of MiB before the loop gives up.
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += im::test::WsClientFrame(0x9, std::string(125, 'p'));
  int writes = 0;
  for (; writes < 5000; ++writes) {
    if (!flood.Write(batch)) break;
    if (writes % 16 == 15 && SlowConsumerCloses(ts, "ws") >= 1) break;
  }
  CAPTURE(writes);
  REQUIRE(WaitUntil([&] { return SlowConsumerCloses(ts, "ws") == 1; }, 5000));
  // Reading at last: pongs only, then the close frame with 4004.
  int code = -1;
  bool only_pongs = true;
  flood.ReadUntil([&](const std::string&) {
    for (const im::test::WsFrame& f : im::test::TakeWsFrames(&flood.in())) {
      if (f.opcode == 0x8) {
        code = im::test::WsCloseCode(f);
        return true;
      }
      only_pongs = only_pongs && f.opcode == 0xa;
    }
    return false;
  });
  CHECK(code == 4004);
  CHECK(only_pongs);
  CHECK(SlowConsumerCloses(ts, "tcp") == 0);
}
