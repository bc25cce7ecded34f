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
      size_t take = std::min(kFrameHeaderBytes - header_have_, input->size());
      std::copy_n(input->data(), take, header_ + header_have_);
      header_have_ += take;
      input->remove_prefix(take);
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
