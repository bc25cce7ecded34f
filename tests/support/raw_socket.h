// Test support: a plain socket to 127.0.0.1 whose reads the test controls (a client that stops
// reading, floods control frames, or reads only after the fact), and the wire formats it needs:
// masked WebSocket client frames, TCP length-prefixed frames, and parsers for what the server
// writes on either transport.
#ifndef IM_TESTS_SUPPORT_RAW_SOCKET_H_
#define IM_TESTS_SUPPORT_RAW_SOCKET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace im::test {

class RawSocket {
 public:
  // Connects to 127.0.0.1:port. receive_buffer > 0 sets SO_RCVBUF before the connect, so the
  // window the server sees stays that small once the test stops reading.
  explicit RawSocket(uint16_t port, int receive_buffer = 0);
  ~RawSocket();

  bool connected() const;
  // Writes every byte; false once the peer is gone (reset, or closed and the write failed).
  bool Write(const std::string& bytes);
  // Reads until done(in()) holds; false on EOF or error first, or after timeout_ms.
  bool ReadUntil(const std::function<bool(const std::string&)>& done, int timeout_ms = 5000);
  // Reads until EOF (true) or timeout_ms (false).
  bool ReadToEof(int timeout_ms = 5000);
  // The bytes read and not consumed yet.
  std::string& in() { return in_; }
  bool eof() const { return eof_; }

  // Sends a WebSocket upgrade for `path` and reads the response head; returns its status line
  // ("" on failure) and leaves the bytes after the head in in().
  std::string WsHandshake(const std::string& path = "/ws");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string in_;
  bool eof_ = false;
};

// A masked, final client WebSocket frame (RFC 6455 5.2/5.3) of any payload size.
std::string WsClientFrame(uint8_t opcode, const std::string& payload);
// A masked client frame header announcing `length` payload bytes; no payload follows.
std::string WsClientHeader(uint8_t opcode, uint64_t length);
// A TCP protocol frame: a 4-byte big-endian length, then the payload.
std::string TcpFrame(const std::string& payload);
// The 4-byte big-endian length of a TCP frame alone (any value, for tests of bad lengths).
std::string TcpHeader(uint32_t length);

struct WsFrame {
  uint8_t opcode = 0;  // 0x1 text, 0x8 close, 0x9 ping, 0xa pong
  std::string payload;
};
// Removes the complete (unmasked, server) frames at the front of `in` and returns them.
std::vector<WsFrame> TakeWsFrames(std::string* in);
// Removes the complete TCP frames at the front of `in` and returns their payloads.
std::vector<std::string> TakeTcpFrames(std::string* in);
// The status code of a WebSocket close frame's payload; 1005 (no status) when it has none.
int WsCloseCode(const WsFrame& close);

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_RAW_SOCKET_H_
