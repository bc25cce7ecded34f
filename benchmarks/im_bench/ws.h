// im-bench: the client side of RFC 6455 WebSocket, just what a benchmark client needs.
#ifndef IM_BENCH_WS_H_
#define IM_BENCH_WS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace imbench::ws {

constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xA;

// The HTTP/1.1 upgrade request with a random 16-byte Sec-WebSocket-Key.
std::string UpgradeRequest(const std::string& host_port, const std::string& path, uint64_t random);

// Looks for the end of the HTTP response in data[0, n). Returns 0 while incomplete; otherwise
// the length of the response head, and `*error` is empty when it is a 101 upgrade.
size_t ParseUpgradeResponse(const char* data, size_t n, std::string* error);

struct FrameHeader {
  bool fin = false;
  uint8_t opcode = 0;
  bool masked = false;
  uint8_t mask[4] = {0, 0, 0, 0};
  uint64_t length = 0;
  size_t header_bytes = 0;
};

// Parses a frame header at data[0, n); false while incomplete.
bool ParseHeader(const char* data, size_t n, FrameHeader* h);

// Appends one final, masked client frame (7/16/64-bit length as needed).
void AppendFrame(std::string* out, uint8_t opcode, std::string_view payload, uint32_t mask);

}  // namespace imbench::ws

#endif  // IM_BENCH_WS_H_
