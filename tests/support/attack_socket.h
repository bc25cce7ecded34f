// A blocking POSIX TCP socket to 127.0.0.1 for the attack suite: full control of the bytes, of the
// receive buffer, and of whether anything is read at all (a client that never reads). Plus the
// WebSocket client frames and the server frames such a test writes and parses by hand.
//
// Thread-safety: one socket per thread.
#ifndef IM_TESTS_SUPPORT_ATTACK_SOCKET_H_
#define IM_TESTS_SUPPORT_ATTACK_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "support/raw_socket.h"

namespace im::test::attack {

class Socket {
 public:
  // Connects to 127.0.0.1:port. `receive_buffer` > 0 sets SO_RCVBUF before the connect (a
  // small window that fills up when the client stops reading). ok() tells whether it worked.
  explicit Socket(uint16_t port, int receive_buffer = 0);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Writes all of `bytes` within timeout_ms; false on an error (the peer is gone) or timeout.
  bool Write(const std::string& bytes, int timeout_ms = 5000);
  // Writes what fits without blocking: the bytes written (0 when the socket buffer is full),
  // or -1 once the connection is gone (reset, broken pipe).
  long TryWrite(const char* data, size_t size);
  // Reads into in() until done(in()) holds, the peer closes, or timeout_ms pass. Returns done.
  bool ReadUntil(const std::function<bool(const std::string&)>& done, int timeout_ms);
  // Reads what is available now without waiting (appends to in()); false once the peer
  // closed or reset.
  bool ReadAvailable();
  // Reads until the peer closes (EOF or reset) or timeout_ms pass; true when it closed.
  bool ReadUntilClosed(int timeout_ms);
  bool peer_closed() const { return peer_closed_; }
  std::string& in() { return in_; }

  // Sends an HTTP/1.1 WebSocket upgrade for /ws and reads the response headers; true on 101.
  // Bytes after the headers stay in in().
  bool UpgradeToWebSocket(int timeout_ms = 5000);

 private:
  bool ReadOnce(int timeout_ms);  // one poll + recv; false on timeout

  int fd_ = -1;
  bool peer_closed_ = false;
  std::string in_;
};

// Frame builders shared with the other raw-socket tests (support/raw_socket.h).
using im::test::TcpFrame;
using im::test::TcpHeader;
using im::test::WsClientFrame;
using im::test::WsClientHeader;

// The close code of the first close frame among the server frames in `bytes`; nullopt when
// there is none (yet).
std::optional<int> WsCloseCode(const std::string& bytes);

// The code of the session.closed push among the TCP frames in `bytes`; nullopt when none.
std::optional<int> TcpClosedCode(const std::string& bytes);

// VmRSS of this process in bytes (0 when unknown).
size_t ResidentBytes();

// `s` as a JSON string literal, quotes included: '"', '\\' and control characters escaped,
// other bytes as they are.
std::string JsonQuote(const std::string& s);

}  // namespace im::test::attack

#endif  // IM_TESTS_SUPPORT_ATTACK_SOCKET_H_
