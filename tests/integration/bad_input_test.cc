// Every bad input gets the documented answer, and the server keeps serving others.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "support/temp_dir.h"
#include "support/raw_socket.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::ErrorOf;
using im::test::RawClient;
using im::test::TestServer;

namespace {

// Reads what has arrived within `ms`; false once the peer closed (EOF or error).
bool ReadFor(asio::ip::tcp::socket& s, int ms, std::string* in) {
  asio::io_context& io = static_cast<asio::io_context&>(s.get_executor().context());
  std::array<char, 4096> buf;
  bool open = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (open && std::chrono::steady_clock::now() < deadline) {
    bool done = false;
    s.async_read_some(asio::buffer(buf), [&](const asio::error_code& ec, size_t n) {
      done = true;
      if (ec && ec != asio::error::operation_aborted) open = false;
      in->append(buf.data(), n);
    });
    io.restart();
    io.run_until(deadline);
    if (!done) {
      s.cancel();
      io.restart();
      io.run();
    }
  }
  return open;
}

// Milliseconds since `t`.
int64_t MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

// Reads until `done(*in)` holds (true), the peer closes or `timeout_ms` pass (false).
bool ReadUntil(asio::ip::tcp::socket& s, int timeout_ms, std::string* in,
               const std::function<bool(const std::string&)>& done) {
  const auto began = std::chrono::steady_clock::now();
  while (!done(*in)) {
    const int64_t left = timeout_ms - MsSince(began);
    if (left <= 0 || !ReadFor(s, static_cast<int>(std::min<int64_t>(left, 100)), in)) {
      return done(*in);
    }
  }
  return true;
}

// True once `in` starts with a whole unmasked server WebSocket frame (payload under 64 KiB).
bool WholeWsFrame(const std::string& in) {
  if (in.size() < 2) return false;
  size_t len = static_cast<uint8_t>(in[1]) & 0x7f;
  size_t header = 2;
  if (len == 126) {
    if (in.size() < 4) return false;
    len = (static_cast<size_t>(static_cast<uint8_t>(in[2])) << 8) | static_cast<uint8_t>(in[3]);
    header = 4;
  }
  return in.size() >= header + len;
}

// The server still serves: a fresh client logs in and pings.
void CheckStillServing(TestServer& ts) {
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("probe")) == 0);
  rapidjson::Document d;
  REQUIRE(c.Call(77, "ping", "", &d));
  CHECK(CodeOf(d) == 0);
}

}  // namespace

TEST_CASE("bad input: broken JSON - wrong types - missing fields - unknown commands") {
  TestServer ts;
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    CAPTURE(url);
    RawClient c(url);
    REQUIRE(c.Login(ts.Token("alice")) == 0);
    rapidjson::Document d;
    for (const char* broken : {"{", "not json", "[1,2]", "{\"id\":5}", "{\"cmd\":7}", "{\"id\":1,\"cmd\":\"ping\"}x"}) {
      CAPTURE(broken);
      c.Send(broken);
      auto t = c.NextText();
      REQUIRE(t.has_value());
      REQUIRE(im::test::ParseJson(*t, &d));
      CHECK(CodeOf(d) == 400);
      CHECK(ErrorOf(d) == "bad_json");
      CHECK_FALSE(d.HasMember("id"));
    }
    struct Case {
      const char* cmd;
      const char* body;
      int code;
      const char* error = "bad_request";
    };
    for (Case k :
         {Case{"chat.send", R"({"to":5,"cid":"a","body":"x"})", 400},
          Case{"chat.send", R"({"to":"bob","cid":"a"})", 400},
          Case{"chat.send", R"({"to":"bob","body":"x"})", 400},
          Case{"chat.send", R"({"cid":"a","body":"x"})", 400},
          Case{"chat.send", R"({"to":"bob","group":"g","cid":"a","body":"x"})", 400},
          Case{"chat.send", R"({"to":"","cid":"a","body":"x"})", 400},
          Case{"chat.send", R"({"to":"bob","cid":"a","body":"x","extra":[1]})", 400},
          Case{"chat.send", R"({"to":"bob","cid":"a","body":"x","type":7})", 400},
          Case{"chat.send", R"({"to":"b\u0001ob","cid":"a","body":"x"})", 400},
          Case{"chat.sync", R"({"after":-1})", 400}, Case{"chat.sync", R"({"limit":0})", 400},
          Case{"chat.sync", R"({"limit":501})", 400}, Case{"chat.sync", R"({"after":"3"})", 400},
          Case{"chat.ack", R"({})", 400}, Case{"chat.ack", R"({"seq":1.5})", 400},
          Case{"no.such.command", R"({})", 501, "unknown_command"}}) {
      CAPTURE(k.cmd);
      CAPTURE(k.body);
      REQUIRE(c.Call(9, k.cmd, k.body, &d));
      CHECK(CodeOf(d) == k.code);
      CHECK(ErrorOf(d) == k.error);
      CHECK(std::string(d["cmd"].GetString()) == k.cmd);
    }
    std::string big(20000, 'x');
    REQUIRE(c.Call(10, "chat.send", R"({"to":"bob","cid":"big","body":")" + big + R"("})", &d));
    CHECK(CodeOf(d) == 413);
    CHECK(ErrorOf(d) == "too_large");
    // Still usable after all of that.
    REQUIRE(c.Call(11, "chat.send", R"({"to":"bob","cid":"ok","body":"fine"})", &d));
    CHECK(CodeOf(d) == 0);
  }
}

TEST_CASE("bad input: invalid UTF-8 in a body is refused and never stored or repaired") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  c.Send("{\"id\":3,\"cmd\":\"chat.send\",\"body\":{\"to\":\"bob\",\"cid\":\"u\",\"body\":\"ok \xff\xfe\"}}");
  auto t = c.NextText();
  REQUIRE(t.has_value());
  rapidjson::Document d;
  REQUIRE(im::test::ParseJson(*t, &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_json");
  CHECK_FALSE(d.HasMember("id"));  // an envelope error (protocol.md section 3)
  CHECK(ts.deps().inbox->Fetch({"default", "bob"}, 0, 10)->entries.empty());
  // A lone surrogate escape is not valid text either.
  c.Send(R"({"id":4,"cmd":"chat.send","body":{"to":"bob","cid":"v","body":"x\ud800y"}})");
  t = c.NextText();
  REQUIRE(t.has_value());
  REQUIRE(im::test::ParseJson(*t, &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_json");
  CHECK_FALSE(d.HasMember("id"));  // an envelope error (protocol.md section 3)
  CHECK(ts.deps().inbox->Fetch({"default", "bob"}, 0, 10)->entries.empty());
}

TEST_CASE("bad input: login with wrong types or a bad device is 400 and stays open") {
  TestServer ts;
  RawClient c(ts.WsUrl());
  rapidjson::Document d;
  REQUIRE(c.Call(1, "login", R"({"token":5})", &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_request");
  REQUIRE(c.Call(2, "login", R"({})", &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_request");
  REQUIRE(c.Call(3, "login", R"({"token":")" + ts.Token("a") + R"(","device":""})", &d));
  CHECK(CodeOf(d) == 400);
  CHECK(ErrorOf(d) == "bad_request");
  CHECK(c.Login(ts.Token("a")) == 0);
}

TEST_CASE("bad input: any command before login is 401 and closes with 4002") {
  TestServer ts;
  for (const std::string& url : {ts.TcpUrl(), ts.WsUrl()}) {
    for (const char* cmd : {"chat.send", "chat.sync", "chat.ack", "logout", "no.such.cmd"}) {
      CAPTURE(url);
      CAPTURE(cmd);
      RawClient c(url);
      rapidjson::Document d;
      REQUIRE(c.Call(1, "ping", "", &d));  // ping is allowed before login
      CHECK(CodeOf(d) == 0);
      REQUIRE(c.Call(2, cmd, R"({"to":"bob","cid":"x","body":"x","seq":1})", &d));
      CHECK(CodeOf(d) == 401);
      CHECK(ErrorOf(d) == "unauthenticated");
      CHECK(c.WaitClosed() == 4002);
    }
  }
  CheckStillServing(ts);
}

TEST_CASE("bad input: oversize frames close the connection") {
  im::ServerOptions o;
  o.max_frame_bytes = 4096;
  TestServer ts(o);
  {
    RawClient c(ts.WsUrl());
    REQUIRE(c.Login(ts.Token("a")) == 0);
    c.Send(R"({"cmd":"ping","body":{"pad":")" + std::string(5000, 'p') + R"("}})");
    CHECK(c.WaitClosed() == 1009);
  }
  {
    RawClient c(ts.TcpUrl());
    REQUIRE(c.Login(ts.Token("a")) == 0);
    c.SendRaw(im::test::TcpHeader(4097) + std::string(100, 'x'));
    CHECK(c.WaitClosed() == 1009);
  }
  {
    RawClient c(ts.TcpUrl());
    c.SendRaw(im::test::TcpHeader(0xFFFFFFFFu));
    CHECK(c.WaitClosed() == 1009);
  }
  {
    RawClient c(ts.TcpUrl());
    c.SendRaw(im::test::TcpHeader(0));
    CHECK(c.WaitClosed() == 4003);
  }
  CheckStillServing(ts);
}

TEST_CASE("bad input: a frame trickled one byte at a time is understood") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  std::string json = R"({"id":42,"cmd":"login","body":{"token":")" + ts.Token("slowpoke") + R"("}})";
  std::string frame = im::test::TcpHeader(static_cast<uint32_t>(json.size())) + json;
  for (char ch : frame) {
    c.SendRaw(std::string(1, ch));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  rapidjson::Document d;
  REQUIRE(c.WaitResponse(42, &d));
  CHECK(CodeOf(d) == 0);
}

TEST_CASE("framing: many frames in one write - frames over 16 KiB - split frames - all answered in order") {
  im::ServerOptions o;
  o.max_frame_bytes = 60000;
  TestServer ts(o);
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("pipe")) == 0);
  // 200 pings in one write (under max_pending_commands): the server cuts them out of its read buffer, which grows for a
  // busy connection; then frames larger than that buffer (20 and 50 KiB of padding); then a
  // burst where a large frame and small ones share writes and are split at odd places.
  std::string burst;
  for (uint32_t id = 200; id < 400; ++id) {
    std::string json = R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping"})";
    burst += im::test::TcpHeader(static_cast<uint32_t>(json.size())) + json;
  }
  c.SendRaw(burst);
  for (uint32_t id : {400u, 401u}) {
    std::string json = R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping","body":{"pad":")" +
                       std::string(id == 400 ? 20000 : 50000, 'p') + R"("}})";
    c.SendRaw(im::test::TcpHeader(static_cast<uint32_t>(json.size())) + json);
  }
  std::string mixed;
  for (uint32_t id = 402; id < 420; ++id) {
    std::string pad(id % 3 == 0 ? 30000 : 10 * id, 'q');
    std::string json = R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping","body":{"pad":")" +
                       pad + R"("}})";
    mixed += im::test::TcpHeader(static_cast<uint32_t>(json.size())) + json;
  }
  for (size_t at = 0; at < mixed.size(); at += 7919) {
    c.SendRaw(mixed.substr(at, 7919));
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  rapidjson::Document d;
  for (uint32_t id = 200; id < 420; ++id) {
    REQUIRE(c.WaitResponse(id, &d));
    CHECK(CodeOf(d) == 0);
  }
  // A bad length behind good frames in the same write still closes the connection (the
  // replies to those frames may or may not make it out before the close).
  std::string tail;
  for (uint32_t id = 500; id < 503; ++id) {
    std::string json = R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping"})";
    tail += im::test::TcpHeader(static_cast<uint32_t>(json.size())) + json;
  }
  c.SendRaw(tail + im::test::TcpHeader(0));
  CHECK(c.WaitClosed() == 4003);
  CheckStillServing(ts);
}

TEST_CASE("limits: past max_connections a new connection is closed with 1013 - a freed slot is reused") {
  im::ServerOptions o;
  o.max_connections = 2;
  TestServer ts(o);
  auto first = std::make_unique<RawClient>(ts.TcpUrl());
  RawClient second(ts.WsUrl());
  REQUIRE(first->Login(ts.Token("a")) == 0);
  REQUIRE(second.Login(ts.Token("b")) == 0);
  RawClient over_tcp(ts.TcpUrl()), over_ws(ts.WsUrl());
  CHECK(over_tcp.WaitClosed() == 1013);
  CHECK(over_ws.WaitClosed() == 1013);
  // The admitted ones carry on.
  rapidjson::Document d;
  REQUIRE(second.Call(1, "ping", "", &d));
  CHECK(CodeOf(d) == 0);
  std::map<std::string, double> m;
  REQUIRE(im::test::ScrapeMetrics(ts.server().http_port(), &m));
  CHECK(m["im_connections_refused_total{transport=\"tcp\"}"] == 1);
  CHECK(m["im_connections_refused_total{transport=\"ws\"}"] == 1);
  // A closed connection frees its slot (the transport reports the close asynchronously).
  first.reset();
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    RawClient again(ts.TcpUrl());
    admitted = again.Login(ts.Token("c")) == 0;
  }
  CHECK(admitted);
}

TEST_CASE("limits: a socket that never logs in is closed after the login timeout - not before") {
  im::ServerOptions o;
  o.login_timeout_ms = 1000;
  o.sweep_interval_ms = 50;
  TestServer ts(o);
  const auto began = std::chrono::steady_clock::now();
  RawClient tcp(ts.TcpUrl()), ws(ts.WsUrl());
  RawClient good(ts.TcpUrl());
  REQUIRE(good.Login(ts.Token("a")) == 0);
  CHECK(tcp.WaitClosed(10000) == 4002);
  CHECK(ws.WaitClosed(10000) == 4002);
  // The server's clock started when it accepted the sockets, after `began`; the sweep may add
  // up to one interval, and a loaded machine more.
  const int64_t took_ms = MsSince(began);
  CHECK(took_ms >= o.login_timeout_ms);
  CHECK(took_ms < o.login_timeout_ms + 8000);
  CHECK_FALSE(good.closed());
}

TEST_CASE("limits: a silent session is closed after three missed heartbeats - not before") {
  im::ServerOptions o;
  o.heartbeat_s = 1;
  o.sweep_interval_ms = 100;
  TestServer ts(o);
  RawClient silent(ts.TcpUrl()), chatty(ts.WsUrl());
  REQUIRE(chatty.Login(ts.Token("b")) == 0);
  // The server last heard from `silent` when its login arrived, after `began`.
  const auto began = std::chrono::steady_clock::now();
  REQUIRE(silent.Login(ts.Token("a")) == 0);
  rapidjson::Document d;
  uint32_t id = 0;
  int close_code = -1;
  while (close_code == -1 && MsSince(began) < 15000) {  // pings every 0.5 s meanwhile
    REQUIRE(chatty.Call(id++, "ping", "", &d));
    close_code = silent.WaitClosed(500);
  }
  const int64_t took_ms = MsSince(began);
  CHECK(close_code == 1000);
  CHECK(took_ms >= 3 * 1000 * o.heartbeat_s);
  CHECK(took_ms < 3 * 1000 * o.heartbeat_s + 8000);
  CHECK_FALSE(chatty.closed());
}

TEST_CASE("limits: WebSocket pings are traffic for the idle timeout") {
  im::ServerOptions o;
  o.heartbeat_s = 1;
  o.sweep_interval_ms = 100;
  TestServer ts(o);
  asio::io_context io;
  asio::ip::tcp::socket ws(io);
  ws.connect({asio::ip::make_address("127.0.0.1"), ts.server().http_port()});
  asio::write(ws, asio::buffer(std::string(
                      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n")));
  std::string in;
  REQUIRE(ReadUntil(ws, 5000, &in,
                    [](const std::string& t) { return t.find("\r\n\r\n") != std::string::npos; }));
  REQUIRE(in.rfind("HTTP/1.1 101", 0) == 0);
  const std::string login =
      R"({"id":1,"cmd":"login","body":{"token":")" + ts.Token("pinger") + R"("}})";
  asio::write(ws, asio::buffer(im::test::WsClientFrame(0x1, login)));
  in.clear();
  REQUIRE(ReadUntil(ws, 5000, &in, WholeWsFrame));
  REQUIRE(in.find("\"epoch\"") != std::string::npos);
  // 4.5 s, past the 3 s timeout, with nothing but WebSocket pings every 0.5 s; each is answered.
  for (int i = 0; i < 9; ++i) {
    asio::write(ws, asio::buffer(im::test::WsClientFrame(0x9, "hb")));
    in.clear();
    REQUIRE(ReadUntil(ws, 5000, &in, WholeWsFrame));
    CHECK(in == "\x8a\x02hb");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Silence: closed after the timeout, with a close frame carrying 1000.
  in.clear();
  REQUIRE(ReadUntil(ws, 10000, &in, [](const std::string& t) { return t.size() >= 4; }));
  CHECK(static_cast<uint8_t>(in[0]) == 0x88);
  CHECK(((static_cast<uint8_t>(in[2]) << 8) | static_cast<uint8_t>(in[3])) == 1000);
  asio::write(ws, asio::buffer(im::test::WsClientFrame(0x8, in.substr(2, 2))));
  CHECK_FALSE(ReadFor(ws, 3000, &in));
}
