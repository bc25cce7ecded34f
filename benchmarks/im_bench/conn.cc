#include "conn.h"

#include <pthread.h>

#include <chrono>
#include <cstring>
#include <future>

#include "common.h"
#include "ws.h"

namespace imbench {

namespace {
constexpr size_t kReadBufferBytes = 64 << 10;
constexpr uint64_t kMaxFrameBytes = 64 << 20;  // a bound against garbage lengths
std::string g_ws_host = "127.0.0.1";
std::string g_ws_path = "/ws";
}  // namespace

// ---- ThreadCtx ----

ThreadCtx::ThreadCtx(int index)
    : index_(index),
      work_(asio::make_work_guard(io_)),
      timer_(io_),
      read_buffer_(kReadBufferBytes),
      rng_(0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(index + 1) ^
           static_cast<uint64_t>(NowNs())) {}

ThreadCtx::~ThreadCtx() { Stop(); }

uint64_t ThreadCtx::Random() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

void ThreadCtx::Start() {
  thread_ = std::thread([this] {
    std::string name = "im-bench-" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    Tick();
    io_.run();
  });
}

void ThreadCtx::Tick() {
  timer_.expires_after(std::chrono::milliseconds(100));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    int64_t now = NowNs();
    for (auto& t : tickers) t(now);
    Tick();
  });
}

void ThreadCtx::RunSync(const std::function<void()>& f) {
  if (!thread_.joinable() || on_thread()) {
    f();
    return;
  }
  std::promise<void> done;
  asio::post(io_, [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

void ThreadCtx::Stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    timer_.cancel();
    io_.stop();
  });
  thread_.join();
}

// ---- Conn ----

Conn::Conn(ThreadCtx* thread, Framing framing)
    : thread_(thread), framing_(framing), socket_(thread->io()) {}

Conn::~Conn() = default;

void Conn::SetWebSocketTarget(std::string host_port, std::string path) {
  g_ws_host = std::move(host_port);
  g_ws_path = std::move(path);
}

void Conn::Open(const asio::ip::tcp::endpoint& server) {
  server_ = server;
  Close();
  // The reset happens in a fresh handler: a caller inside OnMessage may still be reading the
  // partial-frame buffer.
  const uint32_t gen = gen_;
  asio::post(thread_->io(), [this, gen] {
    if (gen == gen_) StartConnect();
  });
}

void Conn::StartConnect() {
  partial_.clear();
  fragments_.clear();
  out_.clear();
  inflight_.clear();
  writing_ = false;
  state_ = State::kConnecting;
  const uint32_t gen = gen_;
  socket_.async_connect(server_, [this, gen](const asio::error_code& ec) {
    if (gen != gen_) return;
    if (ec) return Fail("connect: " + ec.message());
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);
    if (framing_ == Framing::kWebSocket) {
      state_ = State::kHandshake;
      out_ += ws::UpgradeRequest(g_ws_host, g_ws_path, thread_->Random());
      Flush();
    } else {
      state_ = State::kOpen;
    }
    WaitReadable();
    if (state_ == State::kOpen) OnOpen();
  });
}

void Conn::Send(std::string_view message) {
  if (state_ != State::kOpen) return;
  switch (framing_) {
    case Framing::kLen32: {
      uint32_t n = static_cast<uint32_t>(message.size());
      char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                        static_cast<char>(n >> 8), static_cast<char>(n)};
      out_.append(header, 4);
      out_.append(message.data(), message.size());
      break;
    }
    case Framing::kWebSocket:
      ws::AppendFrame(&out_, ws::kText, message, static_cast<uint32_t>(thread_->Random()));
      break;
    case Framing::kMqtt:
      out_.append(message.data(), message.size());
      break;
  }
  last_send_ns_ = NowNs();
  if (!writing_) Flush();
}

void Conn::QueueWsFrame(uint8_t opcode, std::string_view payload) {
  ws::AppendFrame(&out_, opcode, payload, static_cast<uint32_t>(thread_->Random()));
  if (!writing_) Flush();
}

void Conn::Close() {
  ++gen_;
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  writing_ = false;
  asio::error_code ignored;
  if (socket_.is_open()) {
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
  }
}

void Conn::Fail(const std::string& why) {
  if (state_ == State::kClosed) return;
  Close();
  OnDown(why);
}

void Conn::Flush() {
  if (out_.empty() || state_ == State::kClosed || state_ == State::kConnecting) {
    writing_ = false;
    return;
  }
  writing_ = true;
  inflight_.swap(out_);
  out_.clear();
  const uint32_t gen = gen_;
  asio::async_write(socket_, asio::buffer(inflight_),
                    [this, gen](const asio::error_code& ec, size_t) {
                      if (gen != gen_) return;
                      inflight_.clear();
                      if (ec) return Fail("write: " + ec.message());
                      Flush();
                    });
}

void Conn::WaitReadable() {
  const uint32_t gen = gen_;
  socket_.async_wait(asio::ip::tcp::socket::wait_read, [this, gen](const asio::error_code& ec) {
    if (gen != gen_) return;
    if (ec) return Fail("wait: " + ec.message());
    Drain();
  });
}

void Conn::Drain() {
  const uint32_t gen = gen_;
  std::vector<char>& buffer = thread_->read_buffer();
  for (;;) {
    asio::error_code ec;
    size_t n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec == asio::error::eof) return Fail("closed by the server");
    if (ec) return Fail("read: " + ec.message());
    if (partial_.empty()) {
      size_t used = Parse(buffer.data(), n);
      if (gen != gen_) return;
      if (used < n) partial_.assign(buffer.data() + used, n - used);
    } else {
      partial_.append(buffer.data(), n);
      size_t used = Parse(partial_.data(), partial_.size());
      if (gen != gen_) return;
      partial_.erase(0, used);
      if (partial_.empty() && partial_.capacity() > (256 << 10)) partial_.shrink_to_fit();
    }
    if (n < buffer.size()) break;
  }
  WaitReadable();
}

size_t Conn::Parse(const char* data, size_t n) {
  const uint32_t gen = gen_;
  if (framing_ == Framing::kWebSocket) return ParseWebSocket(data, n, gen);
  size_t at = 0;
  while (at < n) {
    const auto* b = reinterpret_cast<const unsigned char*>(data + at);
    const size_t have = n - at;
    if (framing_ == Framing::kLen32) {
      if (have < 4) break;
      uint32_t len = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) |
                     uint32_t{b[3]};
      if (len == 0 || len > kMaxFrameBytes) {
        Fail("bad frame length " + std::to_string(len));
        return at;
      }
      if (have < 4 + size_t{len}) break;
      at += 4 + len;
      OnMessage(std::string_view(data + at - len, len), 0);
    } else {  // kMqtt
      if (have < 2) break;
      uint32_t len = 0;
      size_t i = 1;
      int shift = 0;
      bool complete = false;
      for (; i < have && i <= 4; ++i) {
        len |= uint32_t{static_cast<uint32_t>(b[i] & 0x7f)} << shift;
        shift += 7;
        if ((b[i] & 0x80) == 0) {
          complete = true;
          ++i;
          break;
        }
      }
      if (!complete) {
        if (i > 4) {
          Fail("bad MQTT remaining length");
          return at;
        }
        break;
      }
      if (have < i + len) break;
      uint8_t kind = b[0];
      at += i + len;
      OnMessage(std::string_view(data + at - len, len), kind);
    }
    if (gen != gen_) return at;
  }
  return at;
}

size_t Conn::ParseWebSocket(const char* data, size_t n, uint32_t gen) {
  size_t at = 0;
  if (state_ == State::kHandshake) {
    std::string error;
    size_t head = ws::ParseUpgradeResponse(data, n, &error);
    if (head == 0) {
      if (n > 16384) Fail("WebSocket upgrade response too long");
      return 0;
    }
    if (!error.empty()) {
      Fail(error);
      return head;
    }
    at = head;
    state_ = State::kOpen;
    OnOpen();
    if (gen != gen_) return at;
  }
  while (at < n) {
    ws::FrameHeader h;
    if (!ws::ParseHeader(data + at, n - at, &h)) break;
    if (h.length > kMaxFrameBytes) {
      Fail("WebSocket frame too large");
      return at;
    }
    if (n - at < h.header_bytes + h.length) break;
    const char* payload = data + at + h.header_bytes;
    const size_t len = static_cast<size_t>(h.length);
    at += h.header_bytes + len;
    if (h.masked) {  // servers do not mask; unmask a copy anyway
      std::string copy(payload, len);
      for (size_t i = 0; i < len; ++i) copy[i] = static_cast<char>(copy[i] ^ h.mask[i & 3]);
      HandleWsFrame(h.opcode, h.fin, copy);
    } else {
      HandleWsFrame(h.opcode, h.fin, std::string_view(payload, len));
    }
    if (gen != gen_) return at;
  }
  return at;
}

void Conn::HandleWsFrame(uint8_t opcode, bool fin, std::string_view payload) {
  switch (opcode) {
    case ws::kText:
    case ws::kBinary:
      if (fin) {
        OnMessage(payload, opcode);
      } else {
        fragments_.assign(payload.data(), payload.size());
      }
      break;
    case ws::kContinuation:
      fragments_.append(payload.data(), payload.size());
      if (fin) {
        std::string whole;
        whole.swap(fragments_);
        OnMessage(whole, ws::kText);
      }
      break;
    case ws::kPing:
      QueueWsFrame(ws::kPong, payload);
      break;
    case ws::kPong:
      break;
    case ws::kClose: {
      std::string why = "WebSocket close";
      if (payload.size() >= 2) {
        auto b = reinterpret_cast<const unsigned char*>(payload.data());
        why += " " + std::to_string((b[0] << 8) | b[1]);
        if (payload.size() > 2) why += " " + std::string(payload.substr(2));
      }
      // Answer with the same status, then drop the connection.
      QueueWsFrame(ws::kClose, payload.substr(0, std::min<size_t>(payload.size(), 2)));
      Fail(why);
      break;
    }
    default:
      Fail("WebSocket opcode " + std::to_string(opcode));
  }
}

}  // namespace imbench
