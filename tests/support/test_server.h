// Test support: an im::Server on 127.0.0.1 with OS-chosen ports and memory backends, and a raw
// protocol client (TCP or WebSocket) that sends JSON frames and waits for what comes back.
#ifndef IM_TESTS_SUPPORT_TEST_SERVER_H_
#define IM_TESTS_SUPPORT_TEST_SERVER_H_

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "im/auth.h"
#include "im/backends.h"
#include "im/server.h"

namespace asio {
class io_context;
}
namespace im::internal {
class ClientTransport;
}

namespace im::test {

// Replaces a TestServer's memory inbox, groups and accounts with LevelDB databases under `dir`
// (inbox/, groups/, users/, as imd lays them out). Pass it as TestServer's `customize`; a
// server made later on the same `dir` (after the first is destroyed) reads the same data.
std::function<void(ServerDeps&)> UseLevelDb(const std::string& dir);

// What a TestServer's `customize` is: it installs the storage (or other deps) of the server.
using Storage = std::function<void(ServerDeps&)>;

// Runs `body(customize)` once per storage, each in its own SUBCASE named "memory" or
// "leveldb": `customize` is nullptr (memory backends) or UseLevelDb over a fresh directory
// that lives until `body` returns. Call it from a doctest case.
void ForEachStorage(const std::function<void(const Storage&)>& body);

// A clock the test moves by hand, for deadlines that must not depend on the machine's speed
// (token expiry, retention). Starts at the wall clock's now. Thread-safe.
class FakeClock final : public Clock {
 public:
  FakeClock() : now_ms_(SystemClock()->NowMs()) {}
  TimestampMs NowMs() const override { return now_ms_.load(); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<TimestampMs> now_ms_;
};

// A server with memory backends (unless `customize` replaces them) and a fixed key for
// tenants "default" and "acme". `before_start` runs between the server's construction and
// Start(): the place to set hooks.
class TestServer {
 public:
  static constexpr const char* kAdminKey = "admin-key-of-tenant-default";
  explicit TestServer(ServerOptions options = {},
                      std::function<void(ServerDeps&)> customize = nullptr,
                      const std::function<void(Server&)>& before_start = nullptr);
  ~TestServer();

  std::string Token(const std::string& user, const std::string& tenant = "default",
                    int64_t ttl_s = 3600);
  // A token that expired an hour ago.
  std::string ExpiredToken(const std::string& user, const std::string& tenant = "default");
  std::string TcpUrl() const;
  std::string WsUrl() const;
  Server& server() { return *server_; }
  ServerDeps& deps() { return deps_; }

 private:
  std::shared_ptr<KeyStore> keys_;
  ServerDeps deps_;
  std::unique_ptr<Server> server_;
};

// A raw client over the internal transports: full control of the bytes sent.
class RawClient {
 public:
  // url: "tcp://127.0.0.1:PORT" or "ws://127.0.0.1:PORT/ws".
  explicit RawClient(const std::string& url, size_t max_frame_bytes = 1 << 20);
  ~RawClient();

  bool connected() const { return connected_; }
  void Send(const std::string& json);
  void SendRaw(const std::string& bytes);  // TCP: raw bytes; WS: one text message
  void Close();

  // The next frame, parsed; nullopt after timeout or close.
  std::optional<std::string> NextText(int timeout_ms = 5000);
  // The next frame whose "id" equals `id` (other frames stay queued), parsed into `doc`.
  bool WaitResponse(uint32_t id, rapidjson::Document* doc, int timeout_ms = 5000);
  // The next frame with "cmd" == cmd and no id (a push); others stay queued.
  bool WaitPush(const std::string& cmd, rapidjson::Document* doc, int timeout_ms = 5000);
  // Sends {"id":id,"cmd":cmd,"body":body} and waits for the response.
  bool Call(uint32_t id, const std::string& cmd, const std::string& body_json,
            rapidjson::Document* doc, int timeout_ms = 5000);
  // Logs in with `token`; returns the response code (-1 on timeout).
  int Login(const std::string& token, const std::string& device = "default");

  // Waits until the connection closed; the close code (WS close code, or the code of the TCP
  // session.closed push; 0 when unknown). -1 on timeout.
  int WaitClosed(int timeout_ms = 5000);
  bool closed();
  size_t queued();
  // Bytes this client wrote and read, counted as the server's metrics count them: TCP frames
  // with their 4-byte headers, WebSocket message payloads.
  uint64_t bytes_sent() const { return bytes_sent_.load(); }
  uint64_t bytes_received() const { return bytes_received_.load(); }

 private:
  bool WaitMatching(const std::function<bool(const rapidjson::Document&)>& match,
                    rapidjson::Document* doc, int timeout_ms);

  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<internal::ClientTransport> transport_;
  std::thread thread_;
  bool connected_ = false;
  bool is_tcp_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> inbox_;
  bool closed_ = false;
  int close_code_ = 0;
  uint32_t next_id_ = 1000000;
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_received_{0};
};

// Parses text into a document; false when not JSON.
bool ParseJson(const std::string& text, rapidjson::Document* doc);
// Sends `request` (a whole HTTP/1.1 request, "Connection: close") to 127.0.0.1:port on a fresh
// connection from the local address `from` (any 127.x.y.z reaches the server, which sees it as
// the client's address) and returns everything read until EOF or 30 s of silence ("" when the
// connection fails).
std::string HttpRoundTrip(uint16_t port, const std::string& request,
                          const std::string& from = "127.0.0.1");
// GET /metrics from 127.0.0.1:port, parsed from the Prometheus text format into
// "name{labels}" -> value. False when the content type is not "text/plain; version=0.0.4" or a
// sample line is malformed.
bool ScrapeMetrics(uint16_t port, std::map<std::string, double>* out);
int CodeOf(const rapidjson::Document& doc);  // "code" member, -1 when absent
std::string ErrorOf(const rapidjson::Document& doc);
// The string member `key` of `v`; "" when absent or not a string.
std::string Str(const rapidjson::Value& v, const char* key);

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_TEST_SERVER_H_
