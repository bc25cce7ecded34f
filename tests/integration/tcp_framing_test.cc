// TCP framing over real sockets (and the end of a connection on both transports): however the bytes of length-prefixed frames are cut into
// reads, the server sees the same frames; a frame at max_frame_bytes is served and one byte
// more closes the connection with 1009. These guard the read path, which asks the kernel for
// as much as its buffer holds and waits for readiness after a read that drained the socket.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <asio.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "support/raw_socket.h"
#include "support/test_server.h"
#include "support/wait_until.h"

using im::test::CodeOf;
using im::test::RawClient;
using im::test::TestServer;

namespace {

std::string PingFrame(uint32_t id, size_t pad = 0) {
  std::string json = R"({"id":)" + std::to_string(id) + R"(,"cmd":"ping")";
  if (pad > 0) json += R"(,"body":{"pad":")" + std::string(pad, 'p') + R"("})";
  json += "}";
  return im::test::TcpFrame(json);
}

// A ping frame whose payload is exactly `size` bytes.
std::string PingFrameOfSize(uint32_t id, size_t size) {
  const size_t base = PingFrame(id, 1).size() - 4 - 1;  // the payload without its padding
  REQUIRE(size > base);
  std::string frame = PingFrame(id, size - base);
  REQUIRE(frame.size() == size + 4);
  return frame;
}

// Lets the server's read of the bytes written so far happen before the next write, so the
// two parts usually arrive in separate reads (correctness does not depend on it).
void Pause() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

}  // namespace

TEST_CASE("tcp framing: two frames split at every byte boundary are both answered in order") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("splitter")) == 0);
  uint32_t id = 1000;
  const size_t length = (PingFrame(id) + PingFrame(id + 1)).size();
  for (size_t cut = 1; cut < length; ++cut, id += 2) {
    const std::string two = PingFrame(id) + PingFrame(id + 1);
    c.SendRaw(two.substr(0, cut));
    Pause();
    c.SendRaw(two.substr(cut));
    rapidjson::Document d;
    INFO("cut at byte " << cut);
    REQUIRE(c.WaitResponse(id, &d));
    CHECK(CodeOf(d) == 0);
    REQUIRE(c.WaitResponse(id + 1, &d));
    CHECK(CodeOf(d) == 0);
  }
}

TEST_CASE("tcp framing: hundreds of frames in one write fill several reads - all answered") {
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("burst")) == 0);
  // About 40 KiB in one write: more than one read buffer, so reads come back full and the next
  // one must not wait for new data (the rest is already in the socket).
  for (int round = 0; round < 3; ++round) {
    std::string burst;
    const uint32_t first = 1000 + static_cast<uint32_t>(round) * 1000;
    for (uint32_t id = first; id < first + 250; ++id) burst += PingFrame(id, 120);
    c.SendRaw(burst);
    rapidjson::Document d;
    for (uint32_t id = first; id < first + 250; ++id) {
      INFO("round " << round << " id " << id);
      REQUIRE(c.WaitResponse(id, &d));
      CHECK(CodeOf(d) == 0);
    }
  }
}

TEST_CASE("tcp framing: a frame of exactly max_frame_bytes is served - one byte more closes with 1009") {
  // 4096 is read through the connection's own buffers; 40000 is over the large read buffer
  // (16 KiB), so it is read into a string of its own.
  for (size_t bound : {size_t{4096}, size_t{40000}}) {
    INFO("max_frame_bytes " << bound);
    im::ServerOptions o;
    o.max_frame_bytes = bound;
    TestServer ts(o);
    RawClient c(ts.TcpUrl());
    REQUIRE(c.Login(ts.Token("bound")) == 0);
    // At the bound, in one write and then split in the middle of the payload.
    rapidjson::Document d;
    c.SendRaw(PingFrameOfSize(7, bound));
    REQUIRE(c.WaitResponse(7, &d, 10000));
    CHECK(CodeOf(d) == 0);
    const std::string split = PingFrameOfSize(8, bound) + PingFrame(9);
    c.SendRaw(split.substr(0, bound / 2));
    Pause();
    c.SendRaw(split.substr(bound / 2));
    REQUIRE(c.WaitResponse(8, &d, 10000));
    CHECK(CodeOf(d) == 0);
    REQUIRE(c.WaitResponse(9, &d, 10000));
    CHECK(CodeOf(d) == 0);
    // In many small pieces: the body grows read by read.
    const std::string pieces = PingFrameOfSize(11, bound);
    for (size_t at = 0; at < pieces.size(); at += 997) {
      c.SendRaw(pieces.substr(at, 997));
      if (at % (8 * 997) == 0) Pause();
    }
    REQUIRE(c.WaitResponse(11, &d, 10000));
    CHECK(CodeOf(d) == 0);
    // One byte over: closed on the header, before the payload is buffered.
    c.SendRaw(PingFrameOfSize(10, bound + 1));
    CHECK(c.WaitClosed(10000) == 1009);
  }
}

TEST_CASE("connection end: a peer whose last bytes and FIN come in one segment is seen closed") {
  // The read that takes the last bytes returns less than its buffer, yet the socket is not
  // empty: end of file is pending, and no new readiness event will announce it. The server
  // must still see the close at once, not at the heartbeat timeout. TCP_CORK holds the bytes
  // back so that close() sends them with the FIN in one segment.
  TestServer ts;
  for (bool tcp : {true, false}) {
    INFO((tcp ? "tcp" : "websocket"));
    for (int round = 0; round < 3; ++round) {
      asio::io_context io;
      asio::ip::tcp::socket s(io);
      s.connect({asio::ip::make_address("127.0.0.1"),
                 tcp ? ts.server().tcp_port() : ts.server().http_port()});
      const timeval timeout{10, 0};  // no read below waits longer
      REQUIRE(setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                         sizeof timeout) == 0);
      std::string in;
      const auto read_until = [&](const std::string& needle) {
        asio::error_code ec;
        while (in.find(needle) == std::string::npos && !ec) {
          char buf[4096];
          in.append(buf, s.read_some(asio::buffer(buf), ec));
        }
        return in.find(needle) != std::string::npos;
      };
      if (!tcp) {
        asio::write(s, asio::buffer(std::string(
                           "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n")));
        REQUIRE(read_until("\r\n\r\n"));
      }
      const auto frame = [&](const std::string& json) {
        return tcp ? im::test::TcpFrame(json) : im::test::WsClientFrame(0x1, json);
      };
      asio::write(s, asio::buffer(frame(R"({"id":1,"cmd":"login","body":{"token":")" +
                                        ts.Token("leaver" + std::to_string(round)) + "\"}}")));
      REQUIRE(read_until("\"id\":1"));
      REQUIRE(im::test::WaitUntil([&] { return ts.server().OnlineCount() == 1; }));
      const int on = 1;
      REQUIRE(setsockopt(s.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0);
      // The start of a frame: nothing the server answers (an answer to a closed peer would
      // bring a reset, a readiness event of its own).
      asio::write(s, asio::buffer(frame(R"({"id":2,"cmd":"ping"})").substr(0, 3)));
      s.close();
      CHECK(im::test::WaitUntil([&] { return ts.server().OnlineCount() == 0; }, 5000));
    }
  }
}
