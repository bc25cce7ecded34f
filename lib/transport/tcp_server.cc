#include "transport/tcp_server.h"

#include <asio.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "protocol/framing.h"
#include "protocol/json.h"

namespace im::internal {

bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) return false;
  std::string h = address.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned long p = 0;
  for (size_t i = colon + 1; i < address.size(); ++i) {
    if (address[i] < '0' || address[i] > '9') return false;
    p = p * 10 + static_cast<unsigned long>(address[i] - '0');
    if (p > 65535) return false;
  }
  *host = h;
  *port = static_cast<uint16_t>(p);
  return true;
}

uint64_t NextConnectionId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::string EncodeClosedPush(int code, std::string_view reason) {
  JsonWriter w;
  w.StartObject();
  w.Field("cmd", "session.closed");
  w.Key("body");
  w.StartObject();
  w.Field("code", code);
  w.Field("reason", reason);
  w.EndObject();
  w.EndObject();
  return w.str();
}

namespace {

class TcpServerImpl;

class TcpConnection final : public Connection,
                            public std::enable_shared_from_this<TcpConnection> {
 public:
  // `peer` comes from accept (no getpeername call); TCP_NODELAY is inherited from the
  // listening socket (set in Start).
  TcpConnection(asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& peer,
                const TcpServerOptions& options, TransportHandler* handler,
                TcpServerImpl* server)
      : socket_(std::move(socket)),
        strand_(options.one_io_thread ? socket_.get_executor()
                                      : asio::any_io_executor(
                                            asio::make_strand(socket_.get_executor()))),
        id_(NextConnectionId()),
        remote_(peer.address().to_string() + ":" + std::to_string(peer.port())),
        options_(options),
        handler_(handler),
        server_(server) {}

  uint64_t id() const override { return id_; }
  TransportKind transport() const override { return TransportKind::kTcp; }
  const std::string& remote_address() const override { return remote_; }

  size_t queued_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_bytes_;
  }

  SendResult Send(Frame frame) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) return SendResult::kDropped;
    size_t n = frame.size() + kFrameHeaderBytes;
    if (queued_bytes_ + n > options_.send_queue_bytes) {
      // A reader that cannot keep up is closed rather than allowed to grow our memory; its
      // messages stay in its inbox for the next sync.
      const size_t queued = queued_bytes_;
      CloseLocked(lock, close_code::kTooSlow, "too slow");
      handler_->OnSlowConsumer(*this, queued);
      return SendResult::kDropped;
    }
    queue_.push_back(std::move(frame));
    queued_bytes_ += n;
    if (writing_) return SendResult::kQueued;
    writing_ = true;
    lock.unlock();
    asio::post(strand_, [self = shared_from_this()] { self->StartWrite(); });
    return SendResult::kOk;
  }

  void Close(int code, std::string_view reason) override {
    std::unique_lock<std::mutex> lock(mu_);
    CloseLocked(lock, code, reason);
  }

  // Queues the session.closed notice behind what is queued, then closes once it is written or
  // the linger time ran out (a reader that stopped reading never drains it).
  void CloseLocked(std::unique_lock<std::mutex>& lock, int code, std::string_view reason) {
    if (closing_) return;
    closing_ = true;
    // The close notice may exceed the queue bound by its own size: it is the last frame ever
    // queued.
    Frame notice = Frame::FromString(EncodeClosedPush(code, reason));
    queued_bytes_ += notice.size() + kFrameHeaderBytes;
    queue_.push_back(std::move(notice));
    shutdown_after_flush_ = true;
    bool start = !writing_;
    writing_ = true;
    lock.unlock();
    asio::post(strand_, [self = shared_from_this(), start] {
      self->StartLinger();
      if (start) self->StartWrite();
    });
  }

  // `context` is the handler's, from OnOpen: set, read and dropped only on the strand (a
  // refused connection may already be closing there).
  void Start(ConnectionContext context) {
    asio::post(strand_, [self = shared_from_this(), context = std::move(context)]() mutable {
      if (self->closed_) return;  // closed before it started: OnClose came without it
      self->context_ = std::move(context);
      self->ReadSome();
    });
  }

  // Runs on the strand.
  void HardClose() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    socket_.close(ec);
    if (linger_) linger_->cancel();
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    }
    NotifyClosed();
  }

 private:
  void NotifyClosed();

  // Reads go into a buffer that frames are cut out of, so one recv can carry many frames.
  // The buffer is kSmallRead bytes inline: an idle connection's only read memory, and a login
  // fits. While reads fill it (a busy connection) it is kLargeRead bytes on the heap, and goes
  // back to the inline one when reads come in small again. A frame that does not fit
  // kLargeRead is read into a string of its own, which grows with the bytes that arrive (at
  // most doubling per read), never ahead of them to the length the header declares: memory
  // follows what a peer sends, not what it announces.
  void ReadSome() {
    socket_.async_read_some(
        asio::buffer(rbuf_ + rlen_, rcap_ - rlen_),
        asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& ec,
                                                                 size_t n) {
          self->OnRead(ec, n);
        }));
  }

  void OnRead(const asio::error_code& ec, size_t n) {
    if (ec) return HardClose();
    const bool filled = rlen_ + n == rcap_;
    rlen_ += n;
    size_t pos = 0;
    while (rlen_ - pos >= kFrameHeaderBytes) {
      const uint32_t size = GetFrameHeader(reinterpret_cast<const unsigned char*>(rbuf_ + pos));
      if (size == 0 || size > options_.max_frame_bytes) {
        // Closed before anything is buffered: the length itself is the violation.
        if (IsClosing()) return HardClose();
        Close(size == 0 ? close_code::kProtocolViolation : close_code::kTooBig,
              size == 0 ? "zero-length frame" : "frame too big");
        return DrainUntilEof();
      }
      const size_t have = rlen_ - pos - kFrameHeaderBytes;
      if (have < size) {
        if (kFrameHeaderBytes + size > kLargeRead) {
          // A large frame: read the rest into its own string.
          body_.assign(rbuf_ + pos + kFrameHeaderBytes, have);
          body_size_ = size;
          rlen_ = 0;
          UseSmallBuffer();
          ReadBody();
          return;
        }
        break;
      }
      Deliver(std::string(rbuf_ + pos + kFrameHeaderBytes, size));
      pos += kFrameHeaderBytes + size;
    }
    // Keep the partial frame at the front, then size the buffer for the next read.
    rlen_ -= pos;
    if (pos > 0 && rlen_ > 0) std::memmove(rbuf_, rbuf_ + pos, rlen_);
    size_t need = rlen_;  // room the partial frame needs when its header is in
    if (rlen_ >= kFrameHeaderBytes) {
      need = kFrameHeaderBytes +
             GetFrameHeader(reinterpret_cast<const unsigned char*>(rbuf_));
    }
    // The large buffer once a read filled the small one: bytes came, not just a header.
    if (rcap_ == kSmallRead && filled) {
      large_.reset(new char[kLargeRead]);
      std::memcpy(large_.get(), rbuf_, rlen_);
      rbuf_ = large_.get();
      rcap_ = kLargeRead;
    } else if (rcap_ == kLargeRead && !filled && n < kSmallRead && need <= kSmallRead) {
      UseSmallBuffer();
    }
    ReadSome();
  }

  // Moves the buffered bytes (at most kSmallRead) to the inline buffer and frees the large one.
  void UseSmallBuffer() {
    if (rcap_ == kSmallRead) return;
    std::memcpy(small_.data(), rbuf_, rlen_);
    rbuf_ = small_.data();
    rcap_ = kSmallRead;
    large_.reset();
  }

  // Reads the rest of a large frame into body_, which holds the bytes so far: room for as many
  // again as it holds (at least kBodyStep), but never past the frame's end.
  void ReadBody() {
    const size_t have = body_.size();
    const size_t room = std::min(body_size_ - have, std::max(have, kBodyStep));
    body_.resize(have + room);
    socket_.async_read_some(
        asio::buffer(&body_[have], room),
        asio::bind_executor(strand_, [self = shared_from_this(), have](
                                         const asio::error_code& ec, size_t n) {
          if (ec) return self->HardClose();
          self->body_.resize(have + n);
          if (self->body_.size() < self->body_size_) return self->ReadBody();
          self->OnLargeFrame();
        }));
  }

  void OnLargeFrame() {
    std::string payload;
    payload.swap(body_);  // the idle connection keeps no body buffer
    Deliver(std::move(payload));
    ReadSome();
  }

  void Deliver(std::string payload) {
    if (options_.counters) {
      options_.counters->bytes_in.fetch_add(payload.size() + kFrameHeaderBytes,
                                            std::memory_order_relaxed);
    }
    if (!IsClosing()) handler_->OnFrame(shared_from_this(), context_, std::move(payload));
  }

  // After a violation: discard input until the peer closes or the linger timer fires.
  void DrainUntilEof() {
    auto buf = std::make_shared<std::array<char, 512>>();
    socket_.async_read_some(
        asio::buffer(*buf),
        asio::bind_executor(strand_, [self = shared_from_this(), buf](const asio::error_code& ec,
                                                                      size_t) {
          if (ec) return self->HardClose();
          self->DrainUntilEof();
        }));
  }

  bool IsClosing() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closing_;
  }

  void StartLinger() {
    if (closed_ || linger_) return;
    linger_ = std::make_unique<asio::steady_timer>(strand_);
    linger_->expires_after(std::chrono::milliseconds(options_.close_linger_ms));
    linger_->async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->HardClose();
    });
  }

  // Gathers everything queued into one write. Runs on the strand. One frame (the common case:
  // a push to an idle reader) goes out from inline buffers; several use the vectors, whose
  // memory is given back when the queue runs dry: an idle session keeps room for one frame.
  void StartWrite() {
    if (closed_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_.swap(queue_);
      if (inflight_.empty()) {
        writing_ = false;
        // Keep room for one frame (the next push needs no allocation); drop a larger queue.
        if (queue_.capacity() == 0) queue_.swap(inflight_);
        if (queue_.capacity() > 1) std::vector<Frame>().swap(queue_);
        if (shutdown_after_flush_) {
          asio::error_code ec;
          socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
          shutdown_after_flush_ = false;
        }
      }
    }
    if (inflight_.empty()) {
      std::vector<Frame>().swap(inflight_);
      std::vector<std::array<unsigned char, kFrameHeaderBytes>>().swap(prefixes_);
      std::vector<asio::const_buffer>().swap(buffers_);
      return;
    }
    auto done = asio::bind_executor(
        strand_, [self = shared_from_this()](const asio::error_code& ec, size_t) {
          self->OnWritten(ec);
        });
    if (inflight_.size() == 1) {
      const Frame& f = inflight_.front();
      inflight_bytes_ = f.size() + kFrameHeaderBytes;
      PutFrameHeader(static_cast<uint32_t>(f.size()), prefix_.data());
      // Empty buffers in the sequence are skipped by the write.
      const std::array<asio::const_buffer, 3> one = {
          asio::const_buffer(prefix_.data(), kFrameHeaderBytes),
          asio::const_buffer(f.head.data(), f.head.size()),
          f.tail ? asio::const_buffer(f.tail->data(), f.tail->size()) : asio::const_buffer()};
      asio::async_write(socket_, one, std::move(done));
      return;
    }
    prefixes_.resize(inflight_.size());
    buffers_.clear();
    buffers_.reserve(inflight_.size() * 3);
    inflight_bytes_ = 0;
    for (size_t i = 0; i < inflight_.size(); ++i) {
      const Frame& f = inflight_[i];
      PutFrameHeader(static_cast<uint32_t>(f.size()), prefixes_[i].data());
      buffers_.emplace_back(prefixes_[i].data(), kFrameHeaderBytes);
      if (!f.head.empty()) buffers_.emplace_back(f.head.data(), f.head.size());
      if (f.tail && !f.tail->empty()) buffers_.emplace_back(f.tail->data(), f.tail->size());
      inflight_bytes_ += f.size() + kFrameHeaderBytes;
    }
    asio::async_write(socket_, buffers_, std::move(done));
  }

  void OnWritten(const asio::error_code& ec) {
    inflight_.clear();
    if (ec) return HardClose();
    if (options_.counters) {
      options_.counters->bytes_out.fetch_add(inflight_bytes_, std::memory_order_relaxed);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued_bytes_ -= std::min(queued_bytes_, inflight_bytes_);
    }
    StartWrite();
  }

  asio::ip::tcp::socket socket_;
  // Serializes the connection's handlers: a strand, or with one io thread the io_context's own
  // executor (one thread is already a strand, and an idle session saves the strand's memory).
  asio::any_io_executor strand_;
  const uint64_t id_;
  std::string remote_;
  const TcpServerOptions& options_;
  TransportHandler* handler_;
  TcpServerImpl* server_;
  ConnectionContext context_;  // the handler's; set by Start, dropped after OnClose
  static constexpr size_t kSmallRead = 512;
  static constexpr size_t kLargeRead = 16384;
  std::array<char, kSmallRead> small_;
  std::unique_ptr<char[]> large_;
  char* rbuf_ = small_.data();
  size_t rcap_ = kSmallRead;
  size_t rlen_ = 0;  // bytes in rbuf_: the start of a frame not complete yet
  static constexpr size_t kBodyStep = 4096;
  std::string body_;       // a frame larger than kLargeRead: its bytes so far
  size_t body_size_ = 0;  // its length

  mutable std::mutex mu_;  // guards the fields down to shutdown_after_flush_
  std::vector<Frame> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool shutdown_after_flush_ = false;

  // Strand-only state.
  std::vector<Frame> inflight_;
  std::array<unsigned char, kFrameHeaderBytes> prefix_;  // a one-frame write's length prefix
  std::vector<std::array<unsigned char, kFrameHeaderBytes>> prefixes_;
  std::vector<asio::const_buffer> buffers_;
  size_t inflight_bytes_ = 0;
  bool closed_ = false;
  bool notified_ = false;
  std::unique_ptr<asio::steady_timer> linger_;
};

class TcpServerImpl final : public TcpServer {
 public:
  TcpServerImpl(asio::io_context& io, TcpServerOptions options, TransportHandler* handler)
      : io_(io),
        options_(std::move(options)),
        handler_(handler),
        acceptor_(io),
        retry_timer_(io) {}

  // The owner stops the io threads first; no handler runs concurrently with destruction.
  ~TcpServerImpl() override {
    asio::error_code ec;
    acceptor_.close(ec);
  }

  Status Start() override {
    std::string host;
    uint16_t port;
    if (!SplitHostPort(options_.listen, &host, &port)) {
      return Status::BadRequest("bad tcp listen address: " + options_.listen);
    }
    asio::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      // A host name (as the HTTP listener takes): its first address.
      asio::ip::tcp::resolver resolver(acceptor_.get_executor());
      auto found = resolver.resolve(host, std::to_string(port), ec);
      if (ec || found.empty()) {
        return Status::BadRequest("bad tcp listen host: " + host +
                                  (ec ? " (" + ec.message() + ")" : std::string()));
      }
      addr = found.begin()->endpoint().address();
    }
    asio::ip::tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    // Accepted sockets inherit it (Linux): small frames go out at once, not behind Nagle.
    if (!ec) acceptor_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable("cannot listen on " + options_.listen + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    Accept();
    return Status::OK();
  }

  void Stop(int code, const std::string& reason) override {
    asio::post(io_, [this] {
      asio::error_code ec;
      acceptor_.close(ec);
      retry_timer_.cancel();
    });
    std::vector<std::shared_ptr<TcpConnection>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      for (auto& [id, weak] : connections_) {
        if (auto c = weak.lock()) all.push_back(std::move(c));
      }
    }
    for (auto& c : all) c->Close(code, reason);
  }

  uint16_t port() const override { return port_; }

  void Forget(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    connections_.erase(id);
  }

 private:
  void Accept() {
    acceptor_.async_accept(peer_, [this](const asio::error_code& ec,
                                         asio::ip::tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        auto conn =
            std::make_shared<TcpConnection>(std::move(socket), peer_, options_, handler_, this);
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopped_) return;
          connections_[conn->id()] = conn;
        }
        conn->Start(handler_->OnOpen(conn));
      } else {
        // EMFILE, ENFILE, ENOBUFS...: the next accept would fail the same way at once, and the
        // waiting connection keeps the listener readable, so retrying now would spin.
        RetryAccept();
        return;
      }
      Accept();
    });
  }

  void RetryAccept() {
    retry_timer_.expires_after(std::chrono::milliseconds(kAcceptRetryMs));
    retry_timer_.async_wait([this](const asio::error_code& wait_ec) {
      if (!wait_ec && acceptor_.is_open()) Accept();
    });
  }

  asio::io_context& io_;
  const TcpServerOptions options_;
  TransportHandler* handler_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint peer_;  // filled by each accept
  static constexpr int kAcceptRetryMs = 100;
  asio::steady_timer retry_timer_;  // after a failed accept
  uint16_t port_ = 0;
  std::mutex mu_;
  bool stopped_ = false;
  std::unordered_map<uint64_t, std::weak_ptr<TcpConnection>> connections_;
};

void TcpConnection::NotifyClosed() {
  if (notified_) return;
  notified_ = true;
  server_->Forget(id_);
  // Dropped here: the handler's context may hold this connection (a cycle until now).
  ConnectionContext context = std::move(context_);
  handler_->OnClose(shared_from_this(), context);
}

}  // namespace

std::unique_ptr<TcpServer> NewTcpServer(asio::io_context& io, TcpServerOptions options,
                                        TransportHandler* handler) {
  return std::make_unique<TcpServerImpl>(io, std::move(options), handler);
}

}  // namespace im::internal
