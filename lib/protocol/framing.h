// TCP framing: a 4-byte big-endian length N (1..max_frame_bytes) then N bytes of JSON.
//
// Thread-safety: a FrameDecoder is used by one thread at a time.
#ifndef IM_PROTOCOL_FRAMING_H_
#define IM_PROTOCOL_FRAMING_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace im::internal {

inline constexpr size_t kFrameHeaderBytes = 4;

inline void PutFrameHeader(uint32_t length, unsigned char out[kFrameHeaderBytes]) {
  out[0] = static_cast<unsigned char>(length >> 24);
  out[1] = static_cast<unsigned char>(length >> 16);
  out[2] = static_cast<unsigned char>(length >> 8);
  out[3] = static_cast<unsigned char>(length);
}

inline uint32_t GetFrameHeader(const unsigned char in[kFrameHeaderBytes]) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) |
         uint32_t{in[3]};
}

// Header + payload as one string.
std::string EncodeFrame(std::string_view payload);

// Incremental decoder for byte streams split anywhere. Memory is bounded by max_frame_bytes:
// a header announcing 0 or more than the limit is an error before any payload is buffered.
class FrameDecoder {
 public:
  enum class State { kNeedMore, kFrame, kError };

  explicit FrameDecoder(size_t max_frame_bytes) : max_(max_frame_bytes) {}

  // Consumes bytes from `*input` (advancing it) until one frame is complete (kFrame: the payload
  // is in *frame), the input runs out (kNeedMore) or the stream is bad (kError: too large when
  // too_big(), else zero length). After kError the decoder stays in error.
  State Feed(std::string_view* input, std::string* frame);
  bool too_big() const { return too_big_; }

 private:
  size_t max_;
  unsigned char header_[kFrameHeaderBytes] = {};
  size_t header_have_ = 0;
  size_t need_ = 0;  // payload bytes of the current frame, once the header is complete
  std::string body_;
  bool error_ = false;
  bool too_big_ = false;
};

}  // namespace im::internal

#endif  // IM_PROTOCOL_FRAMING_H_
