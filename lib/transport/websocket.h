// WebSocket (and plain HTTP) server and client, on websocketpp with standalone Asio. All
// websocketpp code lives in websocket.cc, one translation unit, because each unit that includes
// it costs ~14 s and ~700 MB to compile; this header shows no websocketpp or Asio type.
#ifndef IM_TRANSPORT_WEBSOCKET_H_
#define IM_TRANSPORT_WEBSOCKET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "im/result.h"
#include "transport/handler.h"

namespace asio {
class io_context;
}

namespace im::internal {

struct WsServerOptions {
  std::string listen = "127.0.0.1:7000";  // host:port; port 0 = chosen by the OS
  size_t max_frame_bytes = 65536;         // larger message: close 1009
  size_t send_queue_bytes = 1 << 20;      // queued bytes (pongs too) over it: close 4004
  long slow_close_timeout_ms = 1000;      // after a 4004 close begins, how long the queued
                                          // frames and the close frame may take to drain
  size_t max_http_body_bytes = 1 << 20;   // larger HTTP request body: 413
  // Connections not (yet) an open WebSocket (HTTP requests, handshakes under way); one more is
  // closed at once, before anything is read, and counted in counters->refused.
  size_t max_pending = 1024;
  TransportCounters* counters = nullptr;  // bytes in/out of WebSockets; nullptr = not counted
};

// Serves WebSocket connections at /ws (a handshake on another path gets HTTP 404) and HTTP
// requests on every other path (one request per connection; a body over max_http_body_bytes
// gets 413 without reaching the HttpHandler). Binary messages close with 4003.
// Thread-safety: Start/Stop from one thread; connections' Send/Close from any thread. Stop
// and StopListening work by posting to `io`, so the io_context must run for them to take
// effect. `handler` and `http` must stay valid while `io` runs.
//
// Shutting down is in steps, so that a draining server still answers HTTP (its /healthz and
// /readyz say 503, and load balancers need that answer rather than a refused connection):
// RefuseHandshakes, then Stop, then StopListening (or destroy the server).
class WsServer {
 public:
  virtual ~WsServer() = default;
  // Binds and starts accepting on `io` (which the caller runs).
  virtual Status Start() = 0;
  // From now on WebSocket handshakes get HTTP 503. Open connections and HTTP are unaffected.
  virtual void RefuseHandshakes() = 0;
  // Closes every connection with `code`; each then gets OnClose. Handshakes get HTTP 503, and
  // those that complete afterwards are closed without OnOpen. HTTP requests are still served
  // until StopListening.
  virtual void Stop(int code, const std::string& reason) = 0;
  // Stops accepting, and returns once the listener is closed (at most 1 s, when `io` does not
  // run). Destroying the server stops accepting too, without waiting.
  virtual void StopListening() = 0;
  // The bound port (after Start).
  virtual uint16_t port() const = 0;
};

std::unique_ptr<WsServer> NewWsServer(asio::io_context& io, WsServerOptions options,
                                      TransportHandler* handler, HttpHandler http);

// A client-side message transport (TCP or WebSocket), used by im::Client and by tests.
// Thread-safety: Send/Close from any thread; callbacks run on the transport's io thread.
// Destroying the transport waits for a callback running on another thread (so do not destroy
// it while holding a lock its callbacks take); afterwards no callback runs. Destroy it before
// the io_context.
class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  // Blocking connect with a timeout (Unavailable on failure or timeout). The callbacks must be
  // set before; they are taken at this call. Call it once, and not from the io thread.
  virtual Status Connect(int64_t timeout_ms) = 0;
  // Sends one frame (JSON text). For TCP the 4-byte length prefix is added. Raw TCP bytes can
  // be sent with SendRaw (tests of the framing).
  virtual void Send(std::string text) = 0;
  // For WebSocket, SendRaw sends the bytes as one text message, like Send.
  virtual void SendRaw(std::string bytes) = 0;
  // Closes after the frames already sent (WebSocket: close code 1000); on_close follows.
  virtual void Close() = 0;

  std::function<void(std::string text)> on_message;
  // Called once, only after a successful Connect. code: the WebSocket close code the peer sent
  // (1006 when none came); for TCP always 0, as the server tells its code in a session.closed
  // push that the caller parses from on_message.
  std::function<void(int code, std::string reason)> on_close;
};

// `url` is "ws://host:port/path". The transport runs on `io` (which the caller runs on another
// thread). Incoming messages over `max_frame_bytes` close the connection (1009).
std::unique_ptr<ClientTransport> NewWsClientTransport(asio::io_context& io, std::string url,
                                                      size_t max_frame_bytes);

}  // namespace im::internal

#endif  // IM_TRANSPORT_WEBSOCKET_H_
