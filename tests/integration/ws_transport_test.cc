// The WebSocket/HTTP server and the WebSocket and TCP client transports, over real sockets on
// 127.0.0.1 with port 0, against a tiny echo TransportHandler.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_socket.h"
#include "transport/tcp_client.h"
#include "transport/websocket.h"

namespace im::internal {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Runs an io_context on `threads` threads until destroyed.
class IoRunner {
 public:
  explicit IoRunner(int threads = 1) : guard_(asio::make_work_guard(io_)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoRunner() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Echoes every frame back through Connection::Send and records opens and closes.
class EchoHandler : public TransportHandler {
 public:
  ConnectionContext OnOpen(const std::shared_ptr<Connection>& connection) override {
    std::lock_guard<std::mutex> lock(mu_);
    opened_.push_back(connection);
    return std::make_shared<uint64_t>(connection->id());
  }
  void OnFrame(const std::shared_ptr<Connection>& connection, const ConnectionContext& context,
               std::string payload) override {
    // The context OnOpen gave comes back with the connection's frames.
    if (!context || *static_cast<uint64_t*>(context.get()) != connection->id()) return;
    connection->Send(Frame::FromString(std::move(payload)));
  }
  void OnClose(const std::shared_ptr<Connection>& connection,
               const ConnectionContext& context) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (context && *static_cast<uint64_t*>(context.get()) == connection->id()) {
      ++close_calls_[connection->id()];
    }
  }
  void OnTraffic(const Connection& /*connection*/, const ConnectionContext& context) override {
    if (context) ++traffic_;
  }
  int traffic() const { return traffic_.load(); }
  void OnSlowConsumer(const Connection& /*connection*/, size_t queued_bytes) override {
    slow_queued_bytes_ = queued_bytes;
    ++slow_consumers_;
  }
  int slow_consumers() const { return slow_consumers_.load(); }
  // The queued bytes the last OnSlowConsumer reported.
  size_t slow_queued_bytes() const { return slow_queued_bytes_.load(); }

  std::vector<std::shared_ptr<Connection>> Opened() {
    std::lock_guard<std::mutex> lock(mu_);
    return opened_;
  }
  int CloseCalls(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = close_calls_.find(id);
    return it == close_calls_.end() ? 0 : it->second;
  }
  bool AllClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_calls_.size() == opened_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Connection>> opened_;
  std::map<uint64_t, int> close_calls_;
  std::atomic<int> traffic_{0};
  std::atomic<int> slow_consumers_{0};
  std::atomic<size_t> slow_queued_bytes_{0};
};

// A server on 127.0.0.1:0 with two io threads; HTTP answers come from a worker thread.
struct WsFixture {
  explicit WsFixture(WsServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    server = NewWsServer(
        io.io(), options, &handler,
        [this](HttpRequest request, std::function<void(HttpResponse)> respond) {
          asio::post(workers, [request = std::move(request), respond = std::move(respond)] {
            if (request.method == "GET" && request.target == "/healthz") {
              respond({200, "text/plain", "ok"});
            } else if (request.target == "/header") {
              respond({200, "text/plain", request.header("x-test")});
            } else {
              respond({404, "application/json", R"({"error":"not_found"})"});
            }
          });
        });
    REQUIRE(server->Start().ok());
    port = server->port();
    REQUIRE(port != 0);
  }
  ~WsFixture() {
    server->Stop(1001, "test over");
    WaitFor([this] { return handler.AllClosed(); }, 3000ms);
    workers.join();
  }
  std::string Url(const std::string& path = "/ws") const {
    return "ws://127.0.0.1:" + std::to_string(port) + path;
  }

  EchoHandler handler;
  IoRunner io{2};
  asio::thread_pool workers{1};
  std::unique_ptr<WsServer> server;
  uint16_t port = 0;
};

// Collects a client transport's callbacks. Declare it before the transport.
class Sink {
 public:
  void Attach(ClientTransport& t) {
    t.on_message = [this](std::string text) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(text));
    };
    t.on_close = [this](int code, std::string reason) {
      std::lock_guard<std::mutex> lock(mu_);
      ++close_calls_;
      close_code_ = code;
      close_reason_ = std::move(reason);
    };
  }
  bool WaitCount(size_t n) {
    return WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return messages_.size() >= n;
    });
  }
  bool WaitClosed() {
    return WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return close_calls_ > 0;
    });
  }
  std::vector<std::string> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  int close_code() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_code_;
  }
  std::string close_reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_reason_;
  }
  int close_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_calls_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
  int close_calls_ = 0;
  int close_code_ = -1;
  std::string close_reason_;
};

// Transport `t` with `sink` attached, REQUIREd to connect within 3 s.
std::unique_ptr<ClientTransport> Connected(std::unique_ptr<ClientTransport> t, Sink& sink) {
  sink.Attach(*t);
  REQUIRE(t->Connect(3000).ok());
  return t;
}

using im::test::RawSocket;
using im::test::WsClientFrame;

std::string HttpExchange(uint16_t port, const std::string& request) {
  RawSocket client(port);
  client.Write(request);
  client.ReadToEof();
  return client.in();
}

// Reads until the server's close frame and returns its code; every frame before it must have
// opcode `before` (0 = any). -1 when no close frame came within 5 s or another frame did.
int ReadCloseCode(RawSocket& raw, uint8_t before = 0, int timeout_ms = 5000) {
  int code = -1;
  bool other = false;
  raw.ReadUntil([&](const std::string& in) {
    std::string copy = in;
    for (const im::test::WsFrame& frame : im::test::TakeWsFrames(&copy)) {
      if (frame.opcode == 0x8) {
        code = im::test::WsCloseCode(frame);
        return true;
      }
      if (before != 0 && frame.opcode != before) other = true;
    }
    return false;
  }, timeout_ms);
  return other ? -1 : code;
}

TEST_CASE("ws: echo round trip") {
  WsFixture f;
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);
  t->Send(R"({"id":1,"cmd":"ping"})");
  REQUIRE(sink.WaitCount(1));
  CHECK(sink.messages()[0] == R"({"id":1,"cmd":"ping"})");

  auto opened = f.handler.Opened();
  REQUIRE(opened.size() == 1);
  CHECK(opened[0]->transport() == TransportKind::kWebSocket);
  CHECK(opened[0]->remote_address().rfind("127.0.0.1:", 0) == 0);

  t->Close();
  REQUIRE(sink.WaitClosed());
  CHECK(sink.close_code() == 1000);
  CHECK(WaitFor([&] { return f.handler.CloseCalls(opened[0]->id()) == 1; }));
  CHECK(opened[0]->Send(Frame::FromString("{}")) == SendResult::kDropped);
  CHECK(sink.close_calls() == 1);
}

TEST_CASE("ws: 1000 frames arrive in order") {
  WsFixture f;
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);
  for (int i = 0; i < 1000; ++i) t->Send("{\"n\":" + std::to_string(i) + "}");
  REQUIRE(sink.WaitCount(1000));
  auto messages = sink.messages();
  REQUIRE(messages.size() == 1000);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(messages[i] == "{\"n\":" + std::to_string(i) + "}");
  }
}

TEST_CASE("ws: every header length form - masked and not - and a shared tail") {
  WsServerOptions options;
  options.max_frame_bytes = 1 << 17;
  WsFixture f(options);
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 1 << 17), sink);
  const std::vector<size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 70000};
  std::vector<std::string> sent;
  for (size_t size : sizes) {
    std::string text(size, ' ');
    for (size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
    sent.push_back(text);
    t->Send(text);
  }
  sent.push_back("{\"body\":\"h\u00e9llo \u4e16\u754c\"}");
  t->Send(sent.back());
  REQUIRE(sink.WaitCount(sent.size()));
  CHECK(sink.messages() == sent);

  // A fan-out frame: the receiver's own head before a shared tail.
  REQUIRE(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  auto tail = std::make_shared<const std::string>("\"body\":\"h\u00e9\"}");
  CHECK(f.handler.Opened()[0]->Send(Frame{"{\"seq\":7,", tail}) != SendResult::kDropped);
  REQUIRE(sink.WaitCount(sent.size() + 1));
  CHECK(sink.messages().back() == "{\"seq\":7,\"body\":\"h\u00e9\"}");
}

TEST_CASE("ws: a frame over max_frame_bytes closes with 1009") {
  WsServerOptions options;
  options.max_frame_bytes = 1024;
  WsFixture f(options);
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);
  t->Send(std::string(1024, 'a'));  // at the limit: fine
  REQUIRE(sink.WaitCount(1));
  t->Send(std::string(2000, 'a'));
  REQUIRE(sink.WaitClosed());
  CHECK(sink.close_code() == 1009);
  auto opened = f.handler.Opened();
  REQUIRE(opened.size() == 1);
  CHECK(WaitFor([&] { return f.handler.CloseCalls(opened[0]->id()) == 1; }));
}

TEST_CASE("ws: a handshake on a path other than /ws is refused") {
  WsFixture f;
  IoRunner cio;
  Sink sink;
  auto t = NewWsClientTransport(cio.io(), f.Url("/chat"), 65536);
  sink.Attach(*t);
  Status s = t->Connect(3000);
  CHECK_FALSE(s.ok());
  CHECK(std::string(s.message()).find("404") != std::string::npos);

  RawSocket raw(f.port);
  CHECK(raw.WsHandshake("/other").rfind("HTTP/1.1 404", 0) == 0);
  RawSocket ok(f.port);
  CHECK(ok.WsHandshake("/ws?v=1").rfind("HTTP/1.1 101", 0) == 0);
  CHECK(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  CHECK(sink.close_calls() == 0);
}

TEST_CASE("ws: binary messages close with 4003") {
  WsFixture f;
  RawSocket raw(f.port);
  REQUIRE(raw.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  raw.Write(WsClientFrame(0x2, "hello"));
  REQUIRE(raw.ReadUntil([](const std::string& s) {
    return s.size() >= 2 && s.size() >= 2 + static_cast<size_t>(s[1] & 0x7f);
  }));
  const std::string& in = raw.in();
  CHECK(static_cast<uint8_t>(in[0]) == 0x88);  // FIN + close
  REQUIRE((in[1] & 0x7f) >= 2);
  CHECK(((static_cast<uint8_t>(in[2]) << 8) | static_cast<uint8_t>(in[3])) == 4003);
}

TEST_CASE("ws: a ping is answered with a pong carrying its payload and counts as traffic") {
  WsFixture f;
  RawSocket raw(f.port);
  REQUIRE(raw.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  CHECK(f.handler.traffic() == 0);
  raw.Write(WsClientFrame(0x9, "are you there"));
  REQUIRE(raw.ReadUntil([](const std::string& s) {
    return s.size() >= 2 && s.size() >= 2 + static_cast<size_t>(s[1] & 0x7f);
  }));
  const std::string& in = raw.in();
  CHECK(static_cast<uint8_t>(in[0]) == 0x8a);  // FIN + pong, unmasked from the server
  CHECK(in.substr(2, static_cast<size_t>(in[1] & 0x7f)) == "are you there");
  CHECK(WaitFor([&] { return f.handler.traffic() == 1; }));
  raw.Write(WsClientFrame(0xa, ""));  // an unsolicited pong counts too
  CHECK(WaitFor([&] { return f.handler.traffic() == 2; }));
  // Text still flows.
  raw.in().clear();
  raw.Write(WsClientFrame(0x1, "{}"));
  REQUIRE(raw.ReadUntil([](const std::string& s) { return s.size() >= 4; }));
  CHECK(raw.in() == std::string("\x81\x02{}", 4));
}

TEST_CASE("http: GET /healthz - 404 - headers - and a body over the limit") {
  WsServerOptions options;
  options.max_http_body_bytes = 1024;
  WsFixture f(options);
  std::string r = HttpExchange(f.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(r.find("Content-Type: text/plain") != std::string::npos);
  CHECK(r.size() >= 6);
  CHECK(r.substr(r.size() - 6) == "\r\n\r\nok");

  r = HttpExchange(f.port, "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(r.find(R"({"error":"not_found"})") != std::string::npos);

  r = HttpExchange(f.port, "GET /header HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: hi\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(r.substr(r.size() - 2) == "hi");

  r = HttpExchange(f.port,
                   "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n" +
                       std::string(5000, 'x'));
  CHECK(r.rfind("HTTP/1.1 413", 0) == 0);

  // A chunked body is not read (websocketpp reads Content-Length bodies only): 411, not an
  // answer about an empty body.
  r = HttpExchange(f.port,
                   "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 411", 0) == 0);
  CHECK(r.find("Content-Length") != std::string::npos);
}

TEST_CASE("http: a request that is not valid HTTP gets 400 Bad Request with its reason") {
  WsFixture f;
  const std::string bad[] = {
      "GET /healthz HTTP/1.1\r\n\r\n",  // no Host
      "GET /healthz HTTP/1.0\r\n\r\n",
      "NOT-HTTP\r\n\r\n",
      "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2x\r\n\r\n{}",
      "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
  };
  for (const std::string& request : bad) {
    CAPTURE(request);
    const std::string r = HttpExchange(f.port, request);
    CHECK_MESSAGE(r.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0, r);
  }
  // Digits only: a length over the bound is still 413, with its reason.
  const std::string r = HttpExchange(
      f.port, "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
              "99999999999999999999999\r\n\r\n");
  CHECK_MESSAGE(r.rfind("HTTP/1.1 413 Request Entity Too Large\r\n", 0) == 0, r);
  // The server still answers.
  CHECK(HttpExchange(f.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("ws: Send after Close is dropped - the client sees the code") {
  WsFixture f;
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);
  REQUIRE(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  auto conn = f.handler.Opened()[0];
  conn->Close(4001, "kicked");
  conn->Close(4002, "again");  // idempotent
  CHECK(conn->Send(Frame::FromString("{}")) == SendResult::kDropped);
  REQUIRE(sink.WaitClosed());
  CHECK(sink.close_code() == 4001);
  CHECK(sink.close_reason() == "kicked");
  CHECK(WaitFor([&] { return f.handler.CloseCalls(conn->id()) == 1; }));
  std::this_thread::sleep_for(50ms);
  CHECK(f.handler.CloseCalls(conn->id()) == 1);
  CHECK(sink.close_calls() == 1);
}

TEST_CASE("ws: a slow reader is closed with 4004 while others are served") {
  WsServerOptions options;
  options.send_queue_bytes = 256 << 10;
  // Time enough for a loaded sanitizer run to read the queued frames and the close frame; the
  // default (1 s) drops a reader that is still behind then with the close frame unsent.
  options.slow_close_timeout_ms = 20000;
  WsFixture f(options);

  RawSocket slow(f.port, 4096);  // completes the handshake, then never reads
  REQUIRE(slow.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  auto conn = f.handler.Opened()[0];

  IoRunner cio;
  Sink sink;
  auto other = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);

  // One 64 KiB body shared by every frame, as a fan-out would.
  Frame frame{std::string(), std::make_shared<const std::string>(64 << 10, 'x')};
  SendResult result = SendResult::kOk;
  int accepted = 0;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    result = conn->Send(frame);
    if (result == SendResult::kDropped) break;
    ++accepted;
    if (accepted % 8 == 0) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(result == SendResult::kDropped);
  CHECK(accepted >= 3);
  CHECK(conn->queued_bytes() <= options.send_queue_bytes);

  // The slow reader, reading at last, finds its text frames and then the close frame: 4004.
  CHECK(ReadCloseCode(slow, 0x1, 15000) == 4004);
  // Its answer completes the closing handshake, and the server lets the connection go.
  CHECK(slow.Write(WsClientFrame(0x8, std::string("\x0f\xa4", 2))));

  other->Send("still here");
  REQUIRE(sink.WaitCount(1));
  CHECK(sink.messages()[0] == "still here");
  CHECK(WaitFor([&] { return f.handler.CloseCalls(conn->id()) == 1; }, 5000ms));
  CHECK(f.handler.slow_consumers() == 1);
  CHECK(conn->Send(frame) == SendResult::kDropped);
  CHECK(sink.close_calls() == 0);
}

TEST_CASE("ws: a client that pings and never reads is closed at the queue bound with 4004") {
  WsServerOptions options;
  options.send_queue_bytes = 64 << 10;
  WsFixture f(options);
  RawSocket flood(f.port, 4096);  // a small window: the pongs pile up on the server
  REQUIRE(flood.WsHandshake().rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  auto conn = f.handler.Opened()[0];

  // Pings with the largest control payload (125 bytes), 64 per write, as fast as the socket
  // takes them. Unbounded pongs would hold about 40 MiB before the loop gives up.
  const std::string payload(125, 'p');
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += WsClientFrame(0x9, payload);
  size_t max_queued = 0;
  int pings = 0;
  const auto deadline = Clock::now() + 30s;
  while (f.handler.slow_consumers() == 0 && pings < 300000 && Clock::now() < deadline) {
    if (!flood.Write(batch)) break;
    pings += 64;
    max_queued = std::max(max_queued, conn->queued_bytes());
  }
  CAPTURE(pings);
  REQUIRE(f.handler.slow_consumers() == 1);
  // The pongs were counted up to the bound: the one that did not fit closed the connection.
  CHECK(f.handler.slow_queued_bytes() <= options.send_queue_bytes);
  CHECK(f.handler.slow_queued_bytes() + payload.size() + 1024 > options.send_queue_bytes);
  CHECK(max_queued <= options.send_queue_bytes);
  // Reading at last: pongs, then the close frame with 4004.
  CHECK(ReadCloseCode(flood, 0xa) == 4004);
  flood.Write(WsClientFrame(0x8, std::string("\x0f\xa4", 2)));  // acknowledge the close
  CHECK(WaitFor([&] { return f.handler.CloseCalls(conn->id()) == 1; }));
  CHECK(WaitFor([&] { return conn->queued_bytes() == 0; }));
  CHECK(f.handler.slow_consumers() == 1);
}

TEST_CASE("ws: shutdown in steps - handshakes refused with 503, connections closed, HTTP served "
          "until the listener stops") {
  WsFixture f;
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewWsClientTransport(cio.io(), f.Url(), 65536), sink);
  REQUIRE(WaitFor([&] { return f.handler.Opened().size() == 1; }));
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

  // RefuseHandshakes: new WebSockets get 503; the open one and HTTP carry on.
  f.server->RefuseHandshakes();
  RawSocket refused(f.port);
  CHECK(refused.WsHandshake().rfind("HTTP/1.1 503", 0) == 0);
  t->Send("still open");
  REQUIRE(sink.WaitCount(1));
  CHECK(HttpExchange(f.port, healthz).rfind("HTTP/1.1 200", 0) == 0);

  // Stop: every connection closed with its code; handshakes still 503, HTTP still served.
  f.server->Stop(1001, "draining");
  REQUIRE(sink.WaitClosed());
  CHECK(sink.close_code() == 1001);
  CHECK(sink.close_reason() == "draining");
  CHECK(WaitFor([&] { return f.handler.AllClosed(); }));
  Sink late_sink;
  auto late = NewWsClientTransport(cio.io(), f.Url(), 65536);
  late_sink.Attach(*late);
  Status s = late->Connect(3000);
  CHECK_FALSE(s.ok());
  CHECK(std::string(s.message()).find("HTTP 503") != std::string::npos);
  CHECK(HttpExchange(f.port, healthz).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(f.handler.Opened().size() == 1);

  // StopListening: connections are refused.
  f.server->StopListening();
  CHECK(WaitFor([&] {
    asio::io_context io;
    tcp::socket probe(io);
    asio::error_code ec;
    probe.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port), ec);
    return ec == asio::error::connection_refused;
  }));
  CHECK(f.handler.Opened().size() == 1);
}

TEST_CASE("ws client: Connect times out when the handshake never completes") {
  IoRunner sio;
  tcp::acceptor silent(sio.io(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = silent.local_endpoint().port();  // listens, never accepts
  IoRunner cio;
  Sink sink;
  auto t = NewWsClientTransport(cio.io(), "ws://127.0.0.1:" + std::to_string(port) + "/ws", 65536);
  sink.Attach(*t);
  const auto start = Clock::now();
  CHECK_FALSE(t->Connect(300).ok());
  CHECK(Clock::now() - start < 2s);
  t.reset();
  CHECK(sink.close_calls() == 0);
}

// A length-prefixed echo server: "zero" makes it send a zero length, "bye" makes it close.
class TcpEchoServer {
 public:
  explicit TcpEchoServer(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
  }
  ~TcpEchoServer() {
    std::promise<void> done;
    asio::post(acceptor_.get_executor(), [&] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      done.set_value();
    });
    done.get_future().wait();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    void ReadHeader() {
      asio::async_read(socket, asio::buffer(header),
                       [self = shared_from_this()](const asio::error_code& ec, size_t) {
                         if (!ec) self->ReadBody();
                       });
    }
    void ReadBody() {
      const uint32_t n = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                         (uint32_t{header[2]} << 8) | uint32_t{header[3]};
      body.resize(n);
      asio::async_read(socket, asio::buffer(body),
                       [self = shared_from_this()](const asio::error_code& ec, size_t) {
                         if (!ec) self->Reply();
                       });
    }
    void Reply() {
      if (body == "bye") {
        asio::error_code ignored;
        socket.close(ignored);
        return;
      }
      out = body == "zero" ? std::string(4, '\0')
                           : std::string(reinterpret_cast<const char*>(header), 4) + body;
      asio::async_write(socket, asio::buffer(out),
                        [self = shared_from_this()](const asio::error_code& ec, size_t) {
                          if (!ec) self->ReadHeader();
                        });
    }
    tcp::socket socket;
    uint8_t header[4] = {};
    std::string body;
    std::string out;
  };

  void Accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
      if (ec) return;  // closed: `this` may be gone
      std::make_shared<Session>(std::move(socket))->ReadHeader();
      Accept();
    });
  }

  tcp::acceptor acceptor_;
};

std::string Framed(const std::string& text) {
  const uint32_t n = static_cast<uint32_t>(text.size());
  std::string f = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                   static_cast<char>(n >> 8), static_cast<char>(n)};
  return f + text;
}

TEST_CASE("tcp client: echo - order - raw framing - and a zero length closes") {
  IoRunner sio;
  TcpEchoServer echo(sio.io());
  IoRunner cio;
  Sink sink;
  auto t = Connected(NewTcpClientTransport(cio.io(), "127.0.0.1", echo.port(), 65536), sink);

  t->Send("hello");
  REQUIRE(sink.WaitCount(1));
  CHECK(sink.messages()[0] == "hello");

  for (int i = 0; i < 1000; ++i) t->Send("{\"n\":" + std::to_string(i) + "}");
  REQUIRE(sink.WaitCount(1001));
  auto messages = sink.messages();
  for (int i = 0; i < 1000; ++i) REQUIRE(messages[1 + i] == "{\"n\":" + std::to_string(i) + "}");

  t->SendRaw(Framed("a") + Framed("bc"));
  REQUIRE(sink.WaitCount(1003));
  messages = sink.messages();
  CHECK(messages[1001] == "a");
  CHECK(messages[1002] == "bc");

  t->Send("zero");
  REQUIRE(sink.WaitClosed());
  CHECK(sink.close_code() == 0);
  CHECK(sink.close_reason().find("bad frame length 0") != std::string::npos);
  t->Send("after");  // dropped
  std::this_thread::sleep_for(50ms);
  CHECK(sink.close_calls() == 1);
  CHECK(sink.messages().size() == 1003);
}

TEST_CASE("tcp client: server close is reported once - Close - refused connect") {
  IoRunner sio;
  TcpEchoServer echo(sio.io());
  IoRunner cio;
  {
    Sink sink;
    auto t = Connected(NewTcpClientTransport(cio.io(), "127.0.0.1", echo.port(), 65536), sink);
    t->Send("bye");
    REQUIRE(sink.WaitClosed());
    CHECK(sink.close_code() == 0);
    std::this_thread::sleep_for(50ms);
    CHECK(sink.close_calls() == 1);
  }
  {
    Sink sink;
    auto t = Connected(NewTcpClientTransport(cio.io(), "127.0.0.1", echo.port(), 65536), sink);
    t->Send("last");
    t->Close();  // after the queued frame
    REQUIRE(sink.WaitClosed());
    CHECK(sink.close_calls() == 1);
  }
  {
    uint16_t closed_port;
    {
      asio::io_context io;
      tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      closed_port = a.local_endpoint().port();
    }
    Sink sink;
    auto t = NewTcpClientTransport(cio.io(), "127.0.0.1", closed_port, 65536);
    sink.Attach(*t);
    const auto start = Clock::now();
    CHECK_FALSE(t->Connect(3000).ok());
    CHECK(Clock::now() - start < 2s);
    CHECK(sink.close_calls() == 0);
  }
}

}  // namespace
}  // namespace im::internal
