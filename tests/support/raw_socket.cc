#include "support/raw_socket.h"

#include <array>
#include <asio.hpp>
#include <chrono>

namespace im::test {

struct RawSocket::Impl {
  asio::io_context io;
  asio::ip::tcp::socket socket{io};
  std::array<char, 16384> buf{};
  bool connected = false;
};

RawSocket::RawSocket(uint16_t port, int receive_buffer) : impl_(std::make_unique<Impl>()) {
  asio::error_code ec;
  impl_->socket.open(asio::ip::tcp::v4(), ec);
  if (!ec && receive_buffer > 0) {
    impl_->socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer), ec);
  }
  if (!ec) impl_->socket.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  impl_->connected = !ec;
}

RawSocket::~RawSocket() = default;

bool RawSocket::connected() const { return impl_->connected; }

bool RawSocket::Write(const std::string& bytes) {
  asio::error_code ec;
  asio::write(impl_->socket, asio::buffer(bytes), ec);
  return !ec;
}

bool RawSocket::ReadUntil(const std::function<bool(const std::string&)>& done, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done(in_)) {
    if (eof_) return false;
    bool completed = false;
    asio::error_code read_ec;
    size_t n = 0;
    impl_->socket.async_read_some(asio::buffer(impl_->buf),
                                  [&](const asio::error_code& ec, size_t k) {
                                    read_ec = ec;
                                    n = k;
                                    completed = true;
                                  });
    impl_->io.restart();
    impl_->io.run_until(deadline);
    if (!completed) {
      asio::error_code ignored;
      impl_->socket.cancel(ignored);
      impl_->io.restart();
      impl_->io.run();
      return false;
    }
    in_.append(impl_->buf.data(), n);
    if (read_ec) eof_ = true;
  }
  return true;
}

bool RawSocket::ReadToEof(int timeout_ms) {
  ReadUntil([](const std::string&) { return false; }, timeout_ms);
  return eof_;
}

std::string RawSocket::WsHandshake(const std::string& path) {
  if (!Write("GET " + path +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")) {
    return std::string();
  }
  if (!ReadUntil([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; })) {
    return std::string();
  }
  const size_t end = in_.find("\r\n\r\n");
  std::string status = in_.substr(0, in_.find("\r\n"));
  in_.erase(0, end + 4);
  return status;
}

namespace {
const uint8_t kClientMask[4] = {0x12, 0x34, 0x56, 0x78};
}  // namespace

std::string WsClientHeader(uint8_t opcode, uint64_t length) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  if (length < 126) {
    f.push_back(static_cast<char>(0x80 | length));
  } else if (length <= 0xffff) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(length >> 8));
    f.push_back(static_cast<char>(length & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      f.push_back(static_cast<char>((length >> shift) & 0xff));
    }
  }
  for (uint8_t m : kClientMask) f.push_back(static_cast<char>(m));
  return f;
}

std::string WsClientFrame(uint8_t opcode, const std::string& payload) {
  std::string f = WsClientHeader(opcode, payload.size());
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(static_cast<char>(payload[i] ^ kClientMask[i % 4]));
  }
  return f;
}

std::string TcpHeader(uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xff),
          static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
}

std::string TcpFrame(const std::string& payload) {
  return TcpHeader(static_cast<uint32_t>(payload.size())) + payload;
}

std::vector<WsFrame> TakeWsFrames(std::string* in) {
  std::vector<WsFrame> frames;
  size_t pos = 0;
  for (;;) {
    const auto* p = reinterpret_cast<const uint8_t*>(in->data() + pos);
    const size_t have = in->size() - pos;
    if (have < 2) break;
    size_t header = 2;
    uint64_t len = p[1] & 0x7f;
    if (len == 126) {
      header = 4;
      if (have < header) break;
      len = (uint64_t{p[2]} << 8) | p[3];
    } else if (len == 127) {
      header = 10;
      if (have < header) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    }
    if (have < header + len) break;
    frames.push_back(WsFrame{static_cast<uint8_t>(p[0] & 0x0f),
                             in->substr(pos + header, static_cast<size_t>(len))});
    pos += header + static_cast<size_t>(len);
  }
  in->erase(0, pos);
  return frames;
}

std::vector<std::string> TakeTcpFrames(std::string* in) {
  std::vector<std::string> frames;
  size_t pos = 0;
  while (in->size() - pos >= 4) {
    const auto* p = reinterpret_cast<const uint8_t*>(in->data() + pos);
    const size_t len = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    if (in->size() - pos - 4 < len) break;
    frames.push_back(in->substr(pos + 4, len));
    pos += 4 + len;
  }
  in->erase(0, pos);
  return frames;
}

int WsCloseCode(const WsFrame& close) {
  if (close.payload.size() < 2) return 1005;
  return (static_cast<uint8_t>(close.payload[0]) << 8) | static_cast<uint8_t>(close.payload[1]);
}

}  // namespace im::test
