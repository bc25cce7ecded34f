// The WebSocket client codec (RFC 6455): upgrade request and response, frame headers, masked
// client frames.
#include <sodium.h>

#include <cctype>
#include <cstring>

#include "ws.h"

namespace imbench::ws {

std::string UpgradeRequest(const std::string& host_port, const std::string& path,
                           uint64_t random) {
  unsigned char nonce[16];
  for (int i = 0; i < 16; ++i) {
    random ^= random << 13;
    random ^= random >> 7;
    random ^= random << 17;
    nonce[i] = static_cast<unsigned char>(random >> 24);
  }
  char key[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(key, sizeof key, nonce, sizeof nonce, sodium_base64_VARIANT_ORIGINAL);
  return "GET " + path + " HTTP/1.1\r\nHost: " + host_port +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
         "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

size_t ParseUpgradeResponse(const char* data, size_t n, std::string* error) {
  std::string_view text(data, n);
  size_t end = text.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  std::string_view head = text.substr(0, end);
  std::string_view status = head.substr(0, head.find("\r\n"));
  error->clear();
  // "HTTP/1.1 101 Switching Protocols"
  if (status.size() < 12 || status.substr(0, 5) != "HTTP/" || status.substr(9, 3) != "101") {
    *error = "WebSocket upgrade refused: " + std::string(status);
  } else {
    // Header names are case-insensitive; the accept header must be there.
    std::string lower(head);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("\r\nsec-websocket-accept:") == std::string::npos) {
      *error = "WebSocket upgrade without Sec-WebSocket-Accept";
    }
  }
  return end + 4;
}

bool ParseHeader(const char* data, size_t n, FrameHeader* h) {
  if (n < 2) return false;
  auto b = reinterpret_cast<const unsigned char*>(data);
  h->fin = (b[0] & 0x80) != 0;
  h->opcode = b[0] & 0x0f;
  h->masked = (b[1] & 0x80) != 0;
  uint64_t len = b[1] & 0x7f;
  size_t at = 2;
  if (len == 126) {
    if (n < 4) return false;
    len = (uint64_t{b[2]} << 8) | b[3];
    at = 4;
  } else if (len == 127) {
    if (n < 10) return false;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
    at = 10;
  }
  if (h->masked) {
    if (n < at + 4) return false;
    std::memcpy(h->mask, b + at, 4);
    at += 4;
  }
  h->length = len;
  h->header_bytes = at;
  return true;
}

void AppendFrame(std::string* out, uint8_t opcode, std::string_view payload, uint32_t mask) {
  unsigned char header[14];
  size_t at = 0;
  header[at++] = static_cast<unsigned char>(0x80 | opcode);
  const uint64_t len = payload.size();
  if (len < 126) {
    header[at++] = static_cast<unsigned char>(0x80 | len);
  } else if (len <= 0xffff) {
    header[at++] = 0x80 | 126;
    header[at++] = static_cast<unsigned char>(len >> 8);
    header[at++] = static_cast<unsigned char>(len);
  } else {
    header[at++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) header[at++] = static_cast<unsigned char>(len >> (8 * i));
  }
  unsigned char m[4] = {static_cast<unsigned char>(mask >> 24),
                        static_cast<unsigned char>(mask >> 16),
                        static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
  std::memcpy(header + at, m, 4);
  at += 4;
  out->append(reinterpret_cast<const char*>(header), at);
  size_t base = out->size();
  out->append(payload.data(), payload.size());
  char* p = out->data() + base;
  // Mask 8 bytes at a time, then the tail.
  uint64_t m8;
  unsigned char rep[8] = {m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]};
  std::memcpy(&m8, rep, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= m8;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < len; ++i) p[i] = static_cast<char>(p[i] ^ m[i & 3]);
}

}  // namespace imbench::ws
