#include "support/attack_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace im::test::attack {

namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

Socket::Socket(uint16_t port, int receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fd_ = fd;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

bool Socket::Write(const std::string& bytes, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t done = 0;
  while (done < bytes.size()) {
    long n = TryWrite(bytes.data() + done, bytes.size() - done);
    if (n < 0) return false;
    done += static_cast<size_t>(n);
    if (n == 0) {
      if (Clock::now() >= deadline) return false;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, MsLeft(deadline));
    }
  }
  return true;
}

long Socket::TryWrite(const char* data, size_t size) {
  if (fd_ < 0) return -1;
  for (;;) {
    ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

bool Socket::ReadOnce(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r <= 0) return false;
  char buf[16384];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
  if (n > 0) {
    in_.append(buf, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    peer_closed_ = true;
  }
  return true;
}

bool Socket::ReadUntil(const std::function<bool(const std::string&)>& done, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done(in_)) {
    if (peer_closed_ || fd_ < 0 || Clock::now() >= deadline) return false;
    ReadOnce(MsLeft(deadline));
  }
  return true;
}

bool Socket::ReadAvailable() {
  while (fd_ >= 0 && !peer_closed_ && ReadOnce(0)) {
  }
  return fd_ >= 0 && !peer_closed_;
}

bool Socket::ReadUntilClosed(int timeout_ms) {
  ReadUntil([](const std::string&) { return false; }, timeout_ms);
  return peer_closed_;
}

bool Socket::UpgradeToWebSocket(int timeout_ms) {
  if (!Write("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             timeout_ms)) {
    return false;
  }
  if (!ReadUntil([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; },
                 timeout_ms)) {
    return false;
  }
  const size_t end = in_.find("\r\n\r\n") + 4;
  const bool upgraded = in_.rfind("HTTP/1.1 101", 0) == 0;
  in_.erase(0, end);
  return upgraded;
}

std::optional<int> WsCloseCode(const std::string& bytes) {
  size_t at = 0;
  while (at + 2 <= bytes.size()) {
    const uint8_t opcode = static_cast<uint8_t>(bytes[at]) & 0x0f;
    uint64_t length = static_cast<uint8_t>(bytes[at + 1]) & 0x7f;
    size_t header = 2;
    if (length == 126 || length == 127) {
      const size_t extra = length == 126 ? 2 : 8;
      if (at + 2 + extra > bytes.size()) return std::nullopt;
      length = 0;
      for (size_t i = 0; i < extra; ++i) {
        length = (length << 8) | static_cast<uint8_t>(bytes[at + 2 + i]);
      }
      header += extra;
    }
    if (at + header + length > bytes.size()) return std::nullopt;
    if (opcode == 0x8) {
      if (length < 2) return 1005;  // a close frame without a code
      return (static_cast<uint8_t>(bytes[at + header]) << 8) |
             static_cast<uint8_t>(bytes[at + header + 1]);
    }
    at += header + static_cast<size_t>(length);
  }
  return std::nullopt;
}

std::optional<int> TcpClosedCode(const std::string& bytes) {
  size_t at = 0;
  while (at + 4 <= bytes.size()) {
    const uint32_t n = (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at])) << 24) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 1])) << 16) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 2])) << 8) |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 3]));
    if (at + 4 + n > bytes.size()) return std::nullopt;
    rapidjson::Document d;
    d.Parse(bytes.data() + at + 4, n);
    if (!d.HasParseError() && d.IsObject() && d.HasMember("cmd") && d["cmd"].IsString() &&
        std::string(d["cmd"].GetString()) == "session.closed" && d.HasMember("body") &&
        d["body"].IsObject() && d["body"].HasMember("code") && d["body"]["code"].IsInt()) {
      return d["body"]["code"].GetInt();
    }
    at += 4 + n;
  }
  return std::nullopt;
}

size_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace im::test::attack
