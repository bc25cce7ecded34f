// WebSocket + HTTP server and WebSocket client on websocketpp 0.8.2 with standalone Asio.
//
// This is the only translation unit that includes websocketpp (see websocket.h). Nothing here
// may throw into Asio: websocketpp calls use their error_code overloads, and the few that only
// come in a throwing form (set_status, set_body, append_header) and every user callback are
// wrapped in try/catch.
//
// Lifetimes: the server's and the client's state live in a shared object that every
// connection's handlers hold, so a handler that runs late never sees freed websocketpp state.
// The TransportHandler and HttpHandler given to NewWsServer must outlive the io_context's
// running.
#include "transport/websocket.h"

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>
#include <websocketpp/server.hpp>

namespace im::internal {
namespace {

// Server config: a 1 KiB read buffer (inline in every connection, so idle sessions stay
// small; the default is 16 KiB; a larger message is read in several reads), logging compiled
// out, and a slot in each websocketpp connection for its Connection object so the message path
// needs no registry lookup.
struct ServerConfig : public websocketpp::config::asio {
  typedef ServerConfig type;
  typedef websocketpp::config::asio base;
  static const size_t connection_read_buffer_size = 1024;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  struct connection_base {
    // The WsConnection, as the core holds it; set on open, reset on close (on the strand).
    std::shared_ptr<Connection> conn;
    // The handler's context (TransportHandler::OnOpen), the same life (on the strand).
    ConnectionContext context;
    // The server's state (WsServerState), kept alive while the connection lives: its handlers
    // hold it by a plain pointer, which std::function keeps inline where a shared_ptr capture
    // would take a heap block per handler.
    std::shared_ptr<void> server;
    // Counts the connection against WsServerOptions::max_pending from its accept until it
    // opens as a WebSocket or ends (an HTTP request, a failed handshake).
    std::shared_ptr<void> pending_slot;
  };
};

struct ClientConfig : public websocketpp::config::asio_client {
  typedef ClientConfig type;
  typedef websocketpp::config::asio_client base;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using WsEndpoint = websocketpp::server<ServerConfig>;
using ServerCon = WsEndpoint::connection_type;
using ServerConPtr = WsEndpoint::connection_ptr;
using ServerMessage = ServerConfig::message_type;
using WsClient = websocketpp::client<ClientConfig>;
using ClientConPtr = WsClient::connection_ptr;
namespace ws_status = websocketpp::close::status;

// The peer's "ip:port" ("[v6]:port"); "" when the socket is gone.
std::string FormatEndpoint(const asio::ip::tcp::socket& socket) {
  asio::error_code ec;
  asio::ip::tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return std::string();
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  std::string host = a.to_string();
  if (a.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// A close code websocketpp can put in a close frame; others (1005, 1006, 1015, out of range)
// would make close() fail and leave the connection open.
ws_status::value SendableCloseCode(int code) {
  if (code < 1000 || code > 4999) return ws_status::normal;
  auto value = static_cast<ws_status::value>(code);
  if (ws_status::reserved(value) || ws_status::invalid(value)) return ws_status::normal;
  return value;
}

// What a queued message costs against the send-queue bound: its payload plus a fixed
// allowance for its frame header and websocketpp's bookkeeping (the message object, its
// shared_ptr control block, its slot in the send queue). Without the allowance a flood of
// empty pings would queue empty pongs (2 bytes on the wire, about 200 bytes of memory each)
// far past the bound's memory.
constexpr size_t kQueuedFrameOverhead = 192;
static_assert(sizeof(ServerMessage) + 64 <= kQueuedFrameOverhead,
              "the allowance must cover websocketpp's message object");

// Bytes (payloads plus allowances) of messages handed to websocketpp and not yet written and
// released by it. websocketpp's own get_buffered_amount() is read without its lock (a data
// race), misses the batch in flight, and counts no per-message memory. Shared by a
// connection and the deleters of the messages it queued.
struct QueueMeter {
  std::atomic<size_t> bytes{0};
};

// A message prepared for the wire (a text message, or a pong answering a ping), which
// websocketpp then queues as is: the payload is copied once (head + tail), and websocketpp's
// own preparation (a second copy and a UTF-8 pass over every outgoing byte) is skipped: the
// core only sends JSON it encoded from validated strings. Counted in `meter` until
// websocketpp releases it. `mask_key` is for clients, which must mask (RFC 6455 5.3); null
// for the server.
template <typename Message>
typename Message::ptr PrepareFrame(websocketpp::frame::opcode::value opcode,
                                   std::string_view head, const std::string* tail,
                                   const std::shared_ptr<QueueMeter>& meter,
                                   const uint32_t* mask_key) {
  const size_t size = head.size() + (tail ? tail->size() : 0);
  const size_t cost = size + kQueuedFrameOverhead;
  typename Message::ptr msg(new Message(typename Message::con_msg_man_ptr(), opcode, size),
                            [meter, cost](Message* m) {
                              meter->bytes.fetch_sub(cost, std::memory_order_relaxed);
                              delete m;
                            });
  meter->bytes.fetch_add(cost, std::memory_order_relaxed);
  std::string& payload = msg->get_raw_payload();
  payload.append(head.data(), head.size());
  if (tail) payload.append(*tail);
  websocketpp::frame::basic_header header(opcode, size, true, mask_key != nullptr);
  if (mask_key) {
    websocketpp::frame::masking_key_type key;
    key.i = *mask_key;
    websocketpp::frame::word_mask_exact(reinterpret_cast<uint8_t*>(&payload[0]), size, key);
    msg->set_header(websocketpp::frame::prepare_header(
        header, websocketpp::frame::extended_header(size, key.i)));
  } else {
    msg->set_header(
        websocketpp::frame::prepare_header(header, websocketpp::frame::extended_header(size)));
  }
  msg->set_prepared(true);
  return msg;
}

// One accepted WebSocket as the core sees it. Holds the websocketpp connection weakly: the
// core may keep this object after the socket is gone, and then Send/Close are no-ops.
class WsConnection final : public Connection {
 public:
  WsConnection(const ServerConPtr& con, std::string remote, size_t send_queue_bytes,
               long slow_close_timeout_ms, TransportHandler* handler, TransportCounters* counters)
      : id_(NextConnectionId()),
        con_(con),
        remote_(std::move(remote)),
        send_queue_bytes_(send_queue_bytes),
        slow_close_timeout_ms_(slow_close_timeout_ms),
        handler_(handler),
        counters_(counters) {}

  uint64_t id() const override { return id_; }
  TransportKind transport() const override { return TransportKind::kWebSocket; }
  const std::string& remote_address() const override { return remote_; }

  SendResult Send(Frame frame) override {
    return Queue(websocketpp::frame::opcode::text, frame.head, frame.tail.get());
  }

  // Answers a ping (on the connection's strand, from its ping handler). The pong goes through
  // the same bound as every other frame: a client that pings and never reads is a slow reader.
  void Pong(const std::string& payload) {
    (void)Queue(websocketpp::frame::opcode::pong, payload, nullptr);
  }

  void Close(int code, std::string_view reason) override {
    if (closing_.exchange(true, std::memory_order_acq_rel)) return;
    ServerConPtr con = con_.lock();
    if (!con) return;
    asio::post(*con->get_strand(),
               [con, code, reason = std::string(reason), timeout = slow_close_timeout_ms_] {
                 CloseOnStrand(con, code, reason, timeout);
               });
  }

  size_t queued_bytes() const override { return meter_->bytes.load(std::memory_order_relaxed); }

  // Closes now; only on the connection's strand (inside its handlers).
  void CloseNow(int code, const std::string& reason) {
    if (closing_.exchange(true, std::memory_order_acq_rel)) return;
    if (ServerConPtr con = con_.lock()) CloseOnStrand(con, code, reason, slow_close_timeout_ms_);
  }

  void MarkClosed() { closing_.store(true, std::memory_order_release); }

 private:
  // Queues one frame unless it would take the queue over the bound; at the bound, closes the
  // connection with 4004 instead (the close frame, one per connection, may pass the bound by
  // its own size). Thread-safe.
  SendResult Queue(websocketpp::frame::opcode::value opcode, std::string_view head,
                   const std::string* tail) {
    if (closing_.load(std::memory_order_acquire)) return SendResult::kDropped;
    ServerConPtr con = con_.lock();
    if (!con) return SendResult::kDropped;
    const size_t size = head.size() + (tail ? tail->size() : 0);
    const size_t queued = meter_->bytes.load(std::memory_order_relaxed);
    if (queued + size + kQueuedFrameOverhead > send_queue_bytes_) {
      // Only the frame that starts the close reports the slow consumer.
      if (!closing_.exchange(true, std::memory_order_acq_rel)) {
        asio::post(*con->get_strand(),
                   [con, timeout = slow_close_timeout_ms_] {
                     CloseOnStrand(con, close_code::kTooSlow, "too slow", timeout);
                   });
        handler_->OnSlowConsumer(*this, queued);
      }
      return SendResult::kDropped;
    }
    // Thread-safe: websocketpp takes its write lock and posts the write to the strand, where
    // everything queued meanwhile goes out in one gathered write.
    websocketpp::lib::error_code ec =
        con->send(PrepareFrame<ServerMessage>(opcode, head, tail, meter_, nullptr));
    if (ec) return SendResult::kDropped;  // closing; the message is already released
    if (counters_) counters_->bytes_out.fetch_add(size, std::memory_order_relaxed);
    return queued == 0 ? SendResult::kOk : SendResult::kQueued;
  }

  // A slow reader's close frame queues behind data the reader is not taking: wait
  // slow_close_timeout_ms for it rather than websocketpp's default 5 s.
  static void CloseOnStrand(const ServerConPtr& con, int code, const std::string& reason,
                            long slow_close_timeout_ms) {
    if (code == close_code::kTooSlow) con->set_close_handshake_timeout(slow_close_timeout_ms);
    websocketpp::lib::error_code ec;
    con->close(SendableCloseCode(code), reason, ec);
    // Only fails when the connection is already closing or closed: nothing left to do.
  }

  const uint64_t id_;
  const std::weak_ptr<ServerCon> con_;
  const std::string remote_;
  const size_t send_queue_bytes_;
  const long slow_close_timeout_ms_;
  TransportHandler* const handler_;
  TransportCounters* const counters_;
  const std::shared_ptr<QueueMeter> meter_ = std::make_shared<QueueMeter>();
  std::atomic<bool> closing_{false};
};

// Splits "host:port" or "[v6]:port".
bool ParseListen(const std::string& listen, std::string* host, uint16_t* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return false;
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned long p = 0;
  for (size_t i = colon + 1; i < listen.size(); ++i) {
    if (listen[i] < '0' || listen[i] > '9') return false;
    p = p * 10 + static_cast<unsigned long>(listen[i] - '0');
    if (p > 65535) return false;
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(p);
  return true;
}

// The server's state, shared by the facade and by every connection's handlers.
//
// The accept loop is ours rather than websocketpp's listen/start_accept: its stop_listening
// cannot be called safely from a non-io thread while the loop runs, and its loop retries a
// failing accept (EMFILE) at once, spinning. Ours runs on one strand and backs off.
class WsServerState : public std::enable_shared_from_this<WsServerState> {
 public:
  WsServerState(asio::io_context& io, WsServerOptions options, TransportHandler* handler,
                HttpHandler http)
      : io_(io),
        options_(std::move(options)),
        handler_(handler),
        http_(std::move(http)),
        accept_strand_(asio::make_strand(io)),
        acceptor_(accept_strand_),
        retry_timer_(accept_strand_) {}

  Status Start() {
    std::string host;
    uint16_t port = 0;
    if (!ParseListen(options_.listen, &host, &port)) {
      return Status::BadRequest("bad listen address \"" + options_.listen + "\"");
    }
    websocketpp::lib::error_code wec;
    endpoint_.init_asio(&io_, wec);
    if (wec) return Status::Internal("websocketpp init: " + wec.message());
    endpoint_.clear_access_channels(websocketpp::log::alevel::all);
    endpoint_.clear_error_channels(websocketpp::log::elevel::all);
    endpoint_.set_user_agent("libim");
    endpoint_.set_max_message_size(options_.max_frame_bytes);
    endpoint_.set_max_http_body_size(options_.max_http_body_bytes);

    asio::error_code ec;
    asio::ip::tcp::resolver resolver(io_);
    auto results =
        resolver.resolve(host, std::to_string(port), asio::ip::resolver_base::passive, ec);
    if (ec || results.empty()) {
      return Status::Unavailable("resolve " + options_.listen + ": " + ec.message());
    }
    asio::ip::tcp::endpoint ep = results.begin()->endpoint();
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) port_ = acceptor_.local_endpoint(ec).port();
    if (ec) {
      asio::error_code ignored;
      acceptor_.close(ignored);
      return Status::Unavailable("listen " + options_.listen + ": " + ec.message());
    }
    asio::post(accept_strand_, [self = shared_from_this()] { self->Accept(); });
    return Status::OK();
  }

  void RefuseHandshakes() {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_handshakes_ = true;
  }

  void Stop(int code, const std::string& reason) {
    std::vector<std::shared_ptr<WsConnection>> open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      refuse_handshakes_ = true;
      if (!stopped_) {
        stopped_ = true;
        stop_code_ = code;
        stop_reason_ = reason;
      }
      open.reserve(connections_.size());
      for (auto& entry : connections_) open.push_back(entry.second);
    }
    for (auto& ws : open) ws->Close(code, reason);
  }

  // Stops accepting; also when the facade is gone, so the accept loop lets go of this state.
  // With `wait`, returns once the listener is closed (at most 1 s, in case `io` is not run):
  // the owner may stop the io_context right after, and a listener left open would take
  // connections into its backlog that nothing ever answers.
  void StopListening(bool wait) {
    auto closed = std::make_shared<std::promise<void>>();
    std::future<void> done = closed->get_future();
    asio::post(accept_strand_, [self = shared_from_this(), closed] {
      self->CloseAcceptor();
      closed->set_value();
    });
    if (wait) done.wait_for(std::chrono::seconds(1));
  }

  uint16_t port() const { return port_; }

 private:
  // --- accept loop (accept_strand_) ---

  void Accept() {
    if (!acceptor_.is_open()) return;
    ServerConPtr con = endpoint_.get_connection();
    if (!con) {
      RetryAccept();
      return;
    }
    InstallHandlers(con);
    acceptor_.async_accept(
        con->get_raw_socket(),
        [self = shared_from_this(), con](const asio::error_code& ec) { self->OnAccept(con, ec); });
  }

  void OnAccept(const ServerConPtr& con, const asio::error_code& ec) {
    if (!acceptor_.is_open()) return;  // stopped; the never-started connection is dropped
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS...: the next accept would fail the same way right away.
      RetryAccept();
      return;
    }
    if (pending_->fetch_add(1, std::memory_order_relaxed) >= options_.max_pending) {
      // Over the bound of HTTP requests and handshakes: closed before anything is read.
      pending_->fetch_sub(1, std::memory_order_relaxed);
      if (options_.counters) options_.counters->refused.fetch_add(1, std::memory_order_relaxed);
      asio::error_code close_ec;
      con->get_raw_socket().close(close_ec);
      Accept();
      return;
    }
    con->pending_slot = std::shared_ptr<void>(
        nullptr, [pending = pending_](void*) { pending->fetch_sub(1, std::memory_order_relaxed); });
    // Small frames go out at once: without it, Nagle's algorithm holds a push behind the
    // peer's delayed ACK (tens of milliseconds).
    asio::error_code nodelay_ec;
    con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
    asio::post(*con->get_strand(), [con] {
      try {
        con->start();
      } catch (...) {
      }
    });
    Accept();
  }

  void RetryAccept() {
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->Accept();
    });
  }

  void CloseAcceptor() {
    asio::error_code ec;
    retry_timer_.cancel();
    acceptor_.close(ec);
  }

  // --- connection handlers (each connection's strand) ---

  // Per-connection handlers (not endpoint-wide ones, which the endpoint would own: a cycle
  // through this state). The connection keeps this state alive (connection_base::server) while
  // it lives, so its handlers, which live no longer, capture a plain pointer: 8 bytes, kept
  // inside each std::function.
  void InstallHandlers(const ServerConPtr& con) {
    con->server = shared_from_this();
    WsServerState* self = this;
    con->set_validate_handler(
        [self](websocketpp::connection_hdl hdl) { return self->OnValidate(hdl); });
    con->set_open_handler([self](websocketpp::connection_hdl hdl) { self->OnOpen(hdl); });
    con->set_close_handler([self](websocketpp::connection_hdl hdl) { self->OnClosed(hdl); });
    con->set_fail_handler([self](websocketpp::connection_hdl hdl) { self->OnClosed(hdl); });
    con->set_message_handler([self](websocketpp::connection_hdl hdl, ServerMessage::ptr msg) {
      self->OnMessage(hdl, std::move(msg));
    });
    con->set_http_handler([self](websocketpp::connection_hdl hdl) { self->OnHttp(hdl); });
    // Control frames are traffic for the idle timeout. A ping is answered by OnPing, not by
    // websocketpp (returning false), whose pong would bypass the send-queue bound.
    con->set_ping_handler([self](websocketpp::connection_hdl hdl, std::string payload) {
      self->OnPing(hdl, payload);
      return false;
    });
    con->set_pong_handler(
        [self](websocketpp::connection_hdl hdl, std::string) { self->OnControl(hdl); });
  }

  void OnPing(websocketpp::connection_hdl hdl, const std::string& payload) {
    ServerConPtr con = Con(hdl);
    if (!con || !con->conn) return;  // closing without ever opening to the core: no pong
    handler_->OnTraffic(*con->conn, con->context);
    static_cast<WsConnection*>(con->conn.get())->Pong(payload);
  }

  void OnControl(websocketpp::connection_hdl hdl) {
    ServerConPtr con = Con(hdl);
    if (con && con->conn) handler_->OnTraffic(*con->conn, con->context);
  }

  ServerConPtr Con(websocketpp::connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    ServerConPtr con = endpoint_.get_con_from_hdl(std::move(hdl), ec);
    return ec ? nullptr : con;
  }

  // Only /ws (with any query string) upgrades.
  bool OnValidate(websocketpp::connection_hdl hdl) {
    ServerConPtr con = Con(hdl);
    if (!con) return false;
    const std::string& resource = con->get_resource();
    const std::string path = resource.substr(0, resource.find('?'));
    bool stopped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped = refuse_handshakes_;
    }
    if (path == "/ws" && !stopped) return true;
    try {  // set_status only throws outside request processing, which this is not
      con->set_status(stopped ? websocketpp::http::status_code::service_unavailable
                              : websocketpp::http::status_code::not_found);
    } catch (...) {
    }
    return false;
  }

  void OnOpen(websocketpp::connection_hdl hdl) {
    ServerConPtr con = Con(hdl);
    if (!con) return;
    con->pending_slot.reset();  // a WebSocket now: max_connections counts it from here
    // The handshake is over: drop its request and response (header maps, about 1 KiB) that
    // websocketpp would otherwise keep for the connection's life. After the open it reads them
    // only to log, and its logging is compiled out (ServerConfig). The objects are members of a
    // non-const connection, so writing through the const reference is well-defined.
    const_cast<ServerConfig::request_type&>(con->get_request()) = ServerConfig::request_type();
    const_cast<ServerConfig::response_type&>(con->get_response()) = ServerConfig::response_type();
    // The same for the URI parsed from the request (read by OnValidate and OnHttp, before an
    // open; websocketpp's own later reads are for logging and check for null).
    con->set_uri(nullptr);
    auto ws = std::make_shared<WsConnection>(con, FormatEndpoint(con->get_raw_socket()),
                                             options_.send_queue_bytes,
                                             options_.slow_close_timeout_ms, handler_,
                                             options_.counters);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) {
        // Upgraded while Stop ran: close it; the core never hears of it.
        websocketpp::lib::error_code ec;
        con->close(SendableCloseCode(stop_code_), stop_reason_, ec);
        return;
      }
      connections_.emplace(ws->id(), ws);
    }
    con->conn = ws;
    try {
      con->context = handler_->OnOpen(con->conn);
    } catch (...) {
      ws->CloseNow(1011, "internal error");
    }
  }

  void OnClosed(websocketpp::connection_hdl hdl) {
    ServerConPtr con = Con(hdl);
    if (!con) return;
    std::shared_ptr<Connection> conn = std::move(con->conn);
    con->conn.reset();
    ConnectionContext context = std::move(con->context);
    con->context.reset();
    if (!conn) return;  // never opened (handshake failed, HTTP) or already reported
    static_cast<WsConnection*>(conn.get())->MarkClosed();
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_.erase(conn->id());
    }
    try {
      handler_->OnClose(conn, context);
    } catch (...) {
    }
  }

  void OnMessage(websocketpp::connection_hdl hdl, ServerMessage::ptr msg) {
    ServerConPtr con = Con(hdl);
    if (!con || !con->conn) return;
    const std::shared_ptr<Connection> conn = con->conn;
    auto* ws = static_cast<WsConnection*>(conn.get());
    if (msg->get_opcode() != websocketpp::frame::opcode::text) {
      ws->CloseNow(close_code::kProtocolViolation, "binary frames are not supported");
      return;
    }
    if (options_.counters) {
      options_.counters->bytes_in.fetch_add(msg->get_payload().size(), std::memory_order_relaxed);
    }
    try {
      // The message is ours alone (no recycling manager): take its payload without a copy.
      handler_->OnFrame(conn, con->context, std::move(msg->get_raw_payload()));
    } catch (...) {
      ws->CloseNow(1011, "internal error");
    }
  }

  void OnHttp(websocketpp::connection_hdl hdl) {
    ServerConPtr con = Con(hdl);
    if (!con) return;
    HttpRequest request;
    request.method = con->get_request().get_method();
    request.target = con->get_resource();
    request.body = con->get_request_body();
    request.remote_address = FormatEndpoint(con->get_raw_socket());
    // The handler may read headers later on another thread: give it its own copy.
    auto headers = std::make_shared<const websocketpp::http::parser::header_list>(
        con->get_request().get_headers());
    request.header = [headers](const std::string& name) -> std::string {
      auto it = headers->find(name);  // case-insensitive map
      return it == headers->end() ? std::string() : it->second;
    };
    // websocketpp reads bodies by Content-Length only: a chunked body would reach the handler
    // empty. Say so rather than answer for a body that was never read.
    const bool chunked = !con->get_request().get_header("Transfer-Encoding").empty();
    con->defer_http_response();
    auto responded = std::make_shared<std::atomic<bool>>(false);
    auto respond = [con, responded](HttpResponse response) {
      if (responded->exchange(true)) return;  // exactly once
      asio::post(*con->get_strand(), [con, response = std::move(response)] {
        try {
          con->set_status(static_cast<websocketpp::http::status_code::value>(response.status));
          con->set_body(response.body);
          if (!response.content_type.empty()) {
            con->append_header("Content-Type", response.content_type);
          }
          for (const auto& [name, value] : response.headers) con->append_header(name, value);
        } catch (...) {
          // Invalid state: the connection ended while the response was being made.
          return;
        }
        websocketpp::lib::error_code ec;
        con->send_http_response(ec);
      });
    };
    try {
      if (chunked) {
        respond(HttpResponse{411, "text/plain",
                             "Transfer-Encoding is not supported: send the body with "
                             "Content-Length"});
      } else if (http_) {
        http_(std::move(request), respond);
      } else {
        respond(HttpResponse{404, "text/plain", "not found"});
      }
    } catch (...) {
      respond(HttpResponse{500, "text/plain", "internal error"});
    }
  }

  asio::io_context& io_;
  const WsServerOptions options_;
  TransportHandler* const handler_;
  const HttpHandler http_;
  WsEndpoint endpoint_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  asio::ip::tcp::acceptor acceptor_;  // accept_strand_ only (after Start)
  asio::steady_timer retry_timer_;    // accept_strand_ only
  std::atomic<uint16_t> port_{0};
  // Connections counted against options_.max_pending (each holds a pending_slot).
  const std::shared_ptr<std::atomic<size_t>> pending_ = std::make_shared<std::atomic<size_t>>(0);

  std::mutex mu_;  // guards the fields below; taken on open/close, never per message
  bool refuse_handshakes_ = false;  // handshakes get HTTP 503 (RefuseHandshakes or Stop)
  bool stopped_ = false;
  int stop_code_ = close_code::kGoingAway;
  std::string stop_reason_;
  std::map<uint64_t, std::shared_ptr<WsConnection>> connections_;
};

class WsServerImpl final : public WsServer {
 public:
  explicit WsServerImpl(std::shared_ptr<WsServerState> state) : state_(std::move(state)) {}
  ~WsServerImpl() override { state_->StopListening(/*wait=*/false); }
  Status Start() override { return state_->Start(); }
  void RefuseHandshakes() override { state_->RefuseHandshakes(); }
  void Stop(int code, const std::string& reason) override { state_->Stop(code, reason); }
  void StopListening() override { state_->StopListening(/*wait=*/true); }
  uint16_t port() const override { return state_->port(); }

 private:
  std::shared_ptr<WsServerState> state_;
};

// Client state, shared by the facade and the connection's handlers (websocketpp's client
// connections reference their endpoint, so it must outlive them).
class WsClientState : public std::enable_shared_from_this<WsClientState> {
 public:
  // Bound on bytes handed to websocketpp and not yet written; over it the transport closes
  // (4004) rather than buffer without limit.
  static constexpr size_t kMaxQueuedBytes = 16 << 20;

  WsClientState(asio::io_context& io, std::string url, size_t max_frame_bytes)
      : io_(io), url_(std::move(url)), max_frame_bytes_(max_frame_bytes) {}

  Status Connect(int64_t timeout_ms, std::function<void(std::string)> on_message,
                 std::function<void(int, std::string)> on_close) {
    if (connect_called_.exchange(true)) {
      return Status::Error(Code::kConflict, "conflict", "Connect called twice");
    }
    {
      std::lock_guard<std::recursive_mutex> cb(callback_mu_);
      on_message_ = std::move(on_message);
      on_close_ = std::move(on_close);
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ != State::kIdle) return Status::Unavailable("transport closed");
    websocketpp::lib::error_code ec;
    endpoint_.init_asio(&io_, ec);
    if (ec) return Status::Internal("websocketpp init: " + ec.message());
    endpoint_.clear_access_channels(websocketpp::log::alevel::all);
    endpoint_.clear_error_channels(websocketpp::log::elevel::all);
    endpoint_.set_user_agent("libim");
    endpoint_.set_max_message_size(max_frame_bytes_);
    ClientConPtr con = endpoint_.get_connection(url_, ec);
    if (ec || !con) return Status::BadRequest("bad url \"" + url_ + "\": " + ec.message());
    // As the server: small frames go out at once, not behind Nagle's algorithm. Set once the
    // TCP connection exists (the socket has no descriptor before).
    std::weak_ptr<ClientConPtr::element_type> weak = con;
    con->set_tcp_post_init_handler([weak](websocketpp::connection_hdl) {
      if (ClientConPtr c = weak.lock()) {
        asio::error_code ignored;
        c->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      }
    });
    auto self = shared_from_this();
    con->set_open_handler([self](websocketpp::connection_hdl hdl) { self->OnOpen(hdl); });
    con->set_fail_handler([self](websocketpp::connection_hdl hdl) { self->OnFail(hdl); });
    con->set_close_handler([self](websocketpp::connection_hdl hdl) { self->OnClosed(hdl); });
    con->set_message_handler([self](websocketpp::connection_hdl, WsClient::message_ptr msg) {
      self->OnMessage(std::move(msg));
    });
    state_ = State::kConnecting;
    hdl_ = con->get_handle();
    // Unlocked: connect may call the fail handler at once. The resolver and the connection
    // are not touched by anything else yet, so starting here (not on an io thread) is safe.
    lock.unlock();
    endpoint_.connect(con);
    lock.lock();
    const bool done = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                   [this] { return state_ != State::kConnecting; });
    if (state_ == State::kOpen) return Status::OK();
    if (!done) {
      state_ = State::kFailed;
      lock.unlock();
      Terminate(con);
      return Status::Unavailable("connect " + url_ + ": timed out");
    }
    return Status::Unavailable("connect " + url_ + ": " + fail_reason_);
  }

  void Send(const std::string& text) {
    ClientConPtr con = OpenCon();
    if (!con) return;
    if (meter_->bytes.load(std::memory_order_relaxed) + text.size() > kMaxQueuedBytes) {
      Close(close_code::kTooSlow, "send queue over its limit");
      return;
    }
    thread_local std::mt19937 rng{std::random_device{}()};
    const uint32_t mask_key = static_cast<uint32_t>(rng());
    // Thread-safe; an error only means the connection is closing, which on_close reports.
    websocketpp::lib::error_code ec = con->send(
        PrepareFrame<ClientConfig::message_type>(websocketpp::frame::opcode::text,
                                                 std::string_view(), &text, meter_, &mask_key));
    (void)ec;
  }

  void Close(int code, std::string reason) {
    ClientConPtr con;
    {
      std::lock_guard<std::mutex> lock(mu_);
      con = Locked();
      if (!con) return;
      if (state_ == State::kConnecting) {
        state_ = State::kFailed;
        fail_reason_ = "closed while connecting";
        cv_.notify_all();
      } else if (state_ != State::kOpen) {
        return;
      }
    }
    if (con->get_state() == websocketpp::session::state::connecting) {
      Terminate(con);
      return;
    }
    asio::post(*con->get_strand(), [con, code, reason = std::move(reason)] {
      websocketpp::lib::error_code ec;
      con->close(SendableCloseCode(code), reason, ec);
    });
  }

  // The facade is gone: no more callbacks (waits for one in progress on another thread).
  void Detach() {
    {
      std::lock_guard<std::recursive_mutex> cb(callback_mu_);
      detached_ = true;
    }
    Close(close_code::kNormal, "");
  }

 private:
  enum class State { kIdle, kConnecting, kOpen, kFailed, kClosed };

  ClientConPtr Locked() const {  // mu_ held
    return std::static_pointer_cast<WsClient::connection_type>(hdl_.lock());
  }
  ClientConPtr OpenCon() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kOpen ? Locked() : nullptr;
  }

  static void Terminate(const ClientConPtr& con) {
    asio::post(*con->get_strand(), [con] {
      websocketpp::lib::error_code ec;
      if (con->get_state() == websocketpp::session::state::open) {
        con->close(ws_status::going_away, "", ec);
      } else {
        con->terminate(websocketpp::error::make_error_code(websocketpp::error::operation_canceled));
      }
    });
  }

  void OnOpen(websocketpp::connection_hdl hdl) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
      if (state_ == State::kConnecting) {
        state_ = State::kOpen;
        return;
      }
    }
    // Connect gave up (timeout or Close) while the handshake was completing: websocketpp's
    // terminate does not stop a TCP connect in progress, so close what opened anyway.
    if (ClientConPtr con = std::static_pointer_cast<WsClient::connection_type>(hdl.lock())) {
      websocketpp::lib::error_code ec;
      con->close(ws_status::going_away, "", ec);
    }
  }

  void OnFail(websocketpp::connection_hdl hdl) {
    std::string reason;
    ClientConPtr con = std::static_pointer_cast<WsClient::connection_type>(hdl.lock());
    if (con) {
      reason = con->get_ec().message();
      if (int status = con->get_response_code(); status != 0 && status != 101) {
        reason += " (HTTP " + std::to_string(status) + ")";
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kConnecting) {
      state_ = State::kFailed;
      fail_reason_ = reason;
    }
    cv_.notify_all();
  }

  void OnClosed(websocketpp::connection_hdl hdl) {
    bool was_open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_open = state_ == State::kOpen;
      state_ = State::kClosed;
      cv_.notify_all();
    }
    if (!was_open) return;  // Connect already reported the failure
    ClientConPtr con = std::static_pointer_cast<WsClient::connection_type>(hdl.lock());
    // 1006 (abnormal) when the peer's close frame never came.
    const int code = con ? con->get_remote_close_code() : ws_status::abnormal_close;
    std::string reason = con ? con->get_remote_close_reason() : std::string();
    std::lock_guard<std::recursive_mutex> cb(callback_mu_);
    if (detached_ || !on_close_) return;
    try {
      on_close_(code, std::move(reason));
    } catch (...) {
    }
  }

  void OnMessage(WsClient::message_ptr msg) {
    if (msg->get_opcode() != websocketpp::frame::opcode::text) return;
    std::lock_guard<std::recursive_mutex> cb(callback_mu_);
    if (detached_ || !on_message_) return;
    try {
      on_message_(std::move(msg->get_raw_payload()));
    } catch (...) {
    }
  }

  asio::io_context& io_;
  const std::string url_;
  const size_t max_frame_bytes_;
  const std::shared_ptr<QueueMeter> meter_ = std::make_shared<QueueMeter>();
  WsClient endpoint_;

  std::atomic<bool> connect_called_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kIdle;
  std::string fail_reason_;
  websocketpp::connection_hdl hdl_;

  // Held while a callback runs, so Detach from another thread waits for it; recursive so a
  // callback may destroy the transport.
  std::recursive_mutex callback_mu_;
  bool detached_ = false;
  std::function<void(std::string)> on_message_;
  std::function<void(int, std::string)> on_close_;
};

class WsClientTransport final : public ClientTransport {
 public:
  explicit WsClientTransport(std::shared_ptr<WsClientState> state) : state_(std::move(state)) {}
  ~WsClientTransport() override { state_->Detach(); }

  Status Connect(int64_t timeout_ms) override {
    return state_->Connect(timeout_ms, on_message, on_close);
  }
  void Send(std::string text) override { state_->Send(text); }
  // WebSocket has no raw framing of ours to test: the bytes go out as one text message.
  void SendRaw(std::string bytes) override { state_->Send(bytes); }
  void Close() override { state_->Close(close_code::kNormal, ""); }

 private:
  std::shared_ptr<WsClientState> state_;
};

}  // namespace

std::unique_ptr<WsServer> NewWsServer(asio::io_context& io, WsServerOptions options,
                                      TransportHandler* handler, HttpHandler http) {
  return std::make_unique<WsServerImpl>(
      std::make_shared<WsServerState>(io, std::move(options), handler, std::move(http)));
}

std::unique_ptr<ClientTransport> NewWsClientTransport(asio::io_context& io, std::string url,
                                                      size_t max_frame_bytes) {
  return std::make_unique<WsClientTransport>(
      std::make_shared<WsClientState>(io, std::move(url), max_frame_bytes));
}

}  // namespace im::internal
