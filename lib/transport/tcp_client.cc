#include "transport/tcp_client.h"

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace im::internal {
namespace {

// Bytes queued or in flight; over it the transport closes rather than buffer without limit.
constexpr size_t kMaxQueuedBytes = 16 << 20;

// State shared by the facade and every pending handler; all socket work runs on `strand_`.
class TcpClientState : public std::enable_shared_from_this<TcpClientState> {
 public:
  TcpClientState(asio::io_context& io, std::string host, uint16_t port, size_t max_frame_bytes)
      : strand_(asio::make_strand(io)),
        resolver_(strand_),
        socket_(strand_),
        host_(std::move(host)),
        port_(port),
        max_frame_bytes_(max_frame_bytes) {}

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
    if (state_ != State::kIdle) {  // Closed or destroyed before Connect
      return Status::Unavailable("transport closed");
    }
    state_ = State::kConnecting;
    asio::post(strand_, [self = shared_from_this()] { self->StartConnect(); });
    const bool done = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                   [this] { return state_ != State::kConnecting; });
    const std::string target = host_ + ":" + std::to_string(port_);
    if (state_ == State::kOpen) return Status::OK();
    if (!done) {
      state_ = State::kFailed;
      asio::post(strand_, [self = shared_from_this()] { self->Abort(); });
      return Status::Unavailable("connect " + target + ": timed out");
    }
    return Status::Unavailable("connect " + target + ": " + fail_reason_);
  }

  // `bytes` is already framed (or deliberately not, for SendRaw).
  void Send(std::string bytes) {
    asio::post(strand_, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      self->Enqueue(std::move(bytes));
    });
  }

  // Closes after the queued writes; on_close follows.
  void Close() {
    if (AbortConnecting()) return;
    asio::post(strand_, [self = shared_from_this()] {
      if (!self->open_ || self->closing_) return;
      self->closing_ = true;
      if (!self->writing_) self->Finish("closed by client");
    });
  }

  // The facade is gone: no more callbacks (waits for one in progress on another thread), and
  // the socket closes now.
  void Detach() {
    {
      std::lock_guard<std::recursive_mutex> cb(callback_mu_);
      detached_ = true;
    }
    if (AbortConnecting()) return;
    asio::post(strand_, [self = shared_from_this()] { self->Finish("transport destroyed"); });
  }

 private:
  enum class State { kIdle, kConnecting, kOpen, kFailed, kClosed };

  // --- connecting ---

  // True when a Connect in progress was given up (its caller gets an error).
  bool AbortConnecting() {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kConnecting) return false;
    state_ = State::kFailed;
    fail_reason_ = "closed while connecting";
    cv_.notify_all();
    asio::post(strand_, [self = shared_from_this()] { self->Abort(); });
    return true;
  }

  void StartConnect() {
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self = shared_from_this()](const asio::error_code& ec,
                                    asio::ip::tcp::resolver::results_type results) {
          if (ec) {
            self->ConnectFailed("resolve: " + ec.message());
            return;
          }
          if (!self->StillConnecting()) return;
          asio::async_connect(self->socket_, results,
                              [self](const asio::error_code& ec, const asio::ip::tcp::endpoint&) {
                                if (ec) {
                                  self->ConnectFailed(ec.message());
                                } else {
                                  self->Connected();
                                }
                              });
        });
  }

  bool StillConnecting() {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kConnecting;
  }

  void ConnectFailed(std::string reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kConnecting) {
      state_ = State::kFailed;
      fail_reason_ = std::move(reason);
    }
    cv_.notify_all();
  }

  void Connected() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kConnecting) {  // Connect gave up meanwhile
        asio::error_code ignored;
        socket_.close(ignored);
        return;
      }
      state_ = State::kOpen;
      cv_.notify_all();
    }
    open_ = true;
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    ReadHeader();
  }

  void Abort() {
    asio::error_code ignored;
    resolver_.cancel();
    socket_.close(ignored);
  }

  // --- reading: the header into `header_`, then a body buffer for this frame only ---

  void ReadHeader() {
    asio::async_read(
        socket_, asio::buffer(header_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const asio::error_code& ec) {
    if (!open_) return;
    if (ec) {
      Finish(ec == asio::error::eof ? "closed by server" : "read: " + ec.message());
      return;
    }
    const uint32_t n = (uint32_t{header_[0]} << 24) | (uint32_t{header_[1]} << 16) |
                       (uint32_t{header_[2]} << 8) | uint32_t{header_[3]};
    if (n == 0 || n > max_frame_bytes_) {
      Finish("bad frame length " + std::to_string(n));
      return;
    }
    body_.resize(n);
    asio::async_read(
        socket_, asio::buffer(body_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(const asio::error_code& ec) {
    if (!open_) return;
    if (ec) {
      Finish(ec == asio::error::eof ? "closed by server" : "read: " + ec.message());
      return;
    }
    std::string text = std::move(body_);
    body_ = std::string();
    {
      std::lock_guard<std::recursive_mutex> cb(callback_mu_);
      if (!detached_ && on_message_) {
        try {
          on_message_(std::move(text));
        } catch (...) {
        }
      }
    }
    if (open_) ReadHeader();
  }

  // --- writing: one write in flight, the queue drained into one gathered write ---

  void Enqueue(std::string bytes) {
    if (!open_ || closing_ || bytes.empty()) return;
    pending_bytes_ += bytes.size();
    if (pending_bytes_ > kMaxQueuedBytes) {
      Finish("send queue over its limit");
      return;
    }
    queue_.push_back(std::move(bytes));
    if (!writing_) Write();
  }

  void Write() {
    in_flight_.swap(queue_);
    buffers_.clear();
    for (const std::string& b : in_flight_) buffers_.push_back(asio::buffer(b));
    writing_ = true;
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                        self->OnWritten(ec, n);
                      });
  }

  void OnWritten(const asio::error_code& ec, size_t n) {
    writing_ = false;
    in_flight_.clear();
    if (!open_) return;
    if (ec) {
      Finish("write: " + ec.message());
      return;
    }
    pending_bytes_ -= n;
    if (!queue_.empty()) {
      Write();
    } else if (closing_) {
      Finish("closed by client");
    }
  }

  // Ends the connection once and reports it.
  void Finish(const std::string& reason) {
    if (!open_) {
      Abort();  // Connect may still be resolving or connecting
      return;
    }
    open_ = false;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    queue_.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_ = State::kClosed;
    }
    std::lock_guard<std::recursive_mutex> cb(callback_mu_);
    if (detached_ || !on_close_) return;
    try {
      on_close_(0, reason);
    } catch (...) {
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  const std::string host_;
  const uint16_t port_;
  const size_t max_frame_bytes_;

  // strand_ only
  bool open_ = false;
  bool closing_ = false;
  bool writing_ = false;
  size_t pending_bytes_ = 0;  // queued + in flight
  std::vector<std::string> queue_;
  std::vector<std::string> in_flight_;
  std::vector<asio::const_buffer> buffers_;
  uint8_t header_[4] = {};
  std::string body_;

  std::atomic<bool> connect_called_{false};
  std::mutex mu_;  // the connect handshake with the blocked Connect caller
  std::condition_variable cv_;
  State state_ = State::kIdle;
  std::string fail_reason_;

  // Held while a callback runs, so Detach from another thread waits for it; recursive so a
  // callback may destroy the transport.
  std::recursive_mutex callback_mu_;
  bool detached_ = false;
  std::function<void(std::string)> on_message_;
  std::function<void(int, std::string)> on_close_;
};

class TcpClientTransport final : public ClientTransport {
 public:
  explicit TcpClientTransport(std::shared_ptr<TcpClientState> state) : state_(std::move(state)) {}
  ~TcpClientTransport() override { state_->Detach(); }

  Status Connect(int64_t timeout_ms) override {
    return state_->Connect(timeout_ms, on_message, on_close);
  }

  void Send(std::string text) override {
    const uint32_t n = static_cast<uint32_t>(text.size());
    std::string framed;
    framed.reserve(4 + text.size());
    framed.push_back(static_cast<char>(n >> 24));
    framed.push_back(static_cast<char>(n >> 16));
    framed.push_back(static_cast<char>(n >> 8));
    framed.push_back(static_cast<char>(n));
    framed.append(text);
    state_->Send(std::move(framed));
  }

  void SendRaw(std::string bytes) override { state_->Send(std::move(bytes)); }
  void Close() override { state_->Close(); }

 private:
  std::shared_ptr<TcpClientState> state_;
};

}  // namespace

std::unique_ptr<ClientTransport> NewTcpClientTransport(asio::io_context& io, std::string host,
                                                       uint16_t port, size_t max_frame_bytes) {
  return std::make_unique<TcpClientTransport>(
      std::make_shared<TcpClientState>(io, std::move(host), port, max_frame_bytes));
}

}  // namespace im::internal
