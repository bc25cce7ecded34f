// The seam between transports and the core: a transport turns sockets into Connection objects
// and complete frames, and hands them to a TransportHandler.
//
// Thread-safety: handler methods are called from io threads; implementations must not block.
#ifndef IM_TRANSPORT_HANDLER_H_
#define IM_TRANSPORT_HANDLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "im/connection.h"

namespace im::internal {

// What a handler keeps on a connection (muduo's setContext, uWS's per-socket user data): set
// from OnOpen's result, kept by the transport on its connection object, and handed back with
// every later call for that connection, so the handler finds its state without a lookup. The
// transport drops it after OnClose.
using ConnectionContext = std::shared_ptr<void>;

class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // A connection was accepted (before its first frame). Returns the connection's context (null
  // when the handler keeps none, e.g. it refused the connection and closes it).
  virtual ConnectionContext OnOpen(const std::shared_ptr<Connection>& connection) = 0;
  // One complete frame (a JSON text, not validated yet).
  virtual void OnFrame(const std::shared_ptr<Connection>& connection,
                       const ConnectionContext& context, std::string payload) = 0;
  // The connection is gone; called once, after which it receives nothing more.
  virtual void OnClose(const std::shared_ptr<Connection>& connection,
                       const ConnectionContext& context) = 0;
  // Traffic that carries no frame (a WebSocket ping or pong): the peer is alive.
  virtual void OnTraffic(const Connection& connection, const ConnectionContext& context) {
    (void)connection;
    (void)context;
  }
  // The transport is closing `connection` (4004) because its send queue passed the bound with
  // `queued_bytes` waiting. Called once, from the thread whose frame hit the bound (a Send, or
  // an io thread answering a WebSocket ping); OnClose still follows. No context: it may come
  // from any thread, while the context is read only on the connection's own io strand.
  virtual void OnSlowConsumer(const Connection& connection, size_t queued_bytes) {
    (void)connection;
    (void)queued_bytes;
  }
};

// Byte counts of one transport, kept by the transport and read by the metrics. bytes_in counts
// the frames read (TCP: with their 4-byte headers; WebSocket: message payloads); bytes_out the
// frames handed to the socket (TCP: when written; WebSocket: when queued to websocketpp).
struct TransportCounters {
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> refused{0};  // connections closed at accept (a transport's own bound)
};

// Connection ids, unique across every transport of the process (the core keys its connection
// registry by them). Safe from any thread.
uint64_t NextConnectionId();

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query, e.g. "/v1/users/alice?x=1"
  std::string body;
  std::string remote_address;
  std::function<std::string(const std::string& name)> header;  // "" when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // more headers (name, value)
};

// Handles one HTTP request (any path but /ws). `respond` may be called later from any thread,
// exactly once.
using HttpHandler =
    std::function<void(HttpRequest request, std::function<void(HttpResponse)> respond)>;

}  // namespace im::internal

#endif  // IM_TRANSPORT_HANDLER_H_
