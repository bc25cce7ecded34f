#include "protocol/framing.h"

#include <algorithm>

namespace im::internal {

std::string EncodeFrame(std::string_view payload) {
  std::string out(kFrameHeaderBytes, '\0');
  PutFrameHeader(static_cast<uint32_t>(payload.size()),
                 reinterpret_cast<unsigned char*>(out.data()));
  out.append(payload);
  return out;
}

FrameDecoder::State FrameDecoder::Feed(std::string_view* input, std::string* frame) {
  if (error_) return State::kError;
  while (!input->empty()) {
    if (header_have_ < kFrameHeaderBytes) {
      // At most 4 bytes, one at a time (a bounded copy_n here trips g++ 12's
      // -Wstringop-overflow at -O3, a false positive).
      while (header_have_ < kFrameHeaderBytes && !input->empty()) {
        header_[header_have_++] = static_cast<unsigned char>(input->front());
        input->remove_prefix(1);
      }
      if (header_have_ < kFrameHeaderBytes) return State::kNeedMore;
      need_ = GetFrameHeader(header_);
      if (need_ == 0 || need_ > max_) {
        error_ = true;
        too_big_ = need_ > max_;
        return State::kError;
      }
      body_.clear();
      body_.reserve(need_);
      continue;
    }
    size_t take = std::min(need_ - body_.size(), input->size());
    body_.append(input->data(), take);
    input->remove_prefix(take);
    if (body_.size() == need_) {
      frame->swap(body_);
      body_.clear();
      header_have_ = 0;
      need_ = 0;
      return State::kFrame;
    }
  }
  return State::kNeedMore;
}

}  // namespace im::internal
