// TCP framing: a byte stream fed to FrameDecoder in chunks of 1 to 32 bytes (the sizes drawn
// from the input) yields exactly the frames a plain reading of the format gives: well-formed
// streams give back the payloads that were framed, and a length of 0 or over the limit is an
// error (too_big() only for the latter) from which the decoder never recovers.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/framing.h"

namespace {

using im::internal::FrameDecoder;

struct Outcome {
  std::vector<std::string> frames;
  bool error = false;
  bool too_big = false;
};

// The format read directly: frames until the stream ends or a bad length.
Outcome Reference(std::string_view stream, size_t max) {
  Outcome out;
  while (stream.size() >= im::internal::kFrameHeaderBytes) {
    const size_t n =
        im::internal::GetFrameHeader(reinterpret_cast<const unsigned char*>(stream.data()));
    if (n == 0 || n > max) {
      out.error = true;
      out.too_big = n > max;
      return out;
    }
    stream.remove_prefix(im::internal::kFrameHeaderBytes);
    if (stream.size() < n) break;
    out.frames.emplace_back(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const size_t max = in.ConsumeIntegralInRange<size_t>(1, 512);
  std::string stream;
  std::vector<std::string> framed;
  if (in.ConsumeBool()) {
    // Well-formed: payloads of 1..max bytes, framed by the encoder.
    const size_t count = in.ConsumeIntegralInRange<size_t>(0, 16);
    for (size_t i = 0; i < count; ++i) {
      std::string payload = in.ConsumeRandomLengthString(max);
      if (payload.empty()) payload = "x";
      stream += im::internal::EncodeFrame(payload);
      framed.push_back(std::move(payload));
    }
  } else {
    stream = in.ConsumeRandomLengthString(4096);  // any bytes
  }
  const Outcome expected = Reference(stream, max);
  if (!framed.empty() && (expected.error || expected.frames != framed)) abort();

  FrameDecoder decoder(max);
  Outcome got;
  std::string_view rest = stream;
  std::string frame;
  while (!rest.empty() && !got.error) {
    // The remaining input's bytes pick each chunk size; 1..32 bytes, 1 once they run out.
    std::string_view chunk = rest.substr(0, in.ConsumeIntegralInRange<size_t>(1, 32));
    rest.remove_prefix(chunk.size());
    while (!got.error) {
      const FrameDecoder::State state = decoder.Feed(&chunk, &frame);
      if (state == FrameDecoder::State::kFrame) {
        got.frames.push_back(frame);
      } else if (state == FrameDecoder::State::kError) {
        got.error = true;
        got.too_big = decoder.too_big();
      } else {
        if (!chunk.empty()) abort();  // kNeedMore only when the chunk is used up
        break;
      }
    }
  }
  if (got.frames != expected.frames || got.error != expected.error ||
      got.too_big != expected.too_big) {
    abort();
  }
  if (got.error) {
    // Stays in error, whatever follows.
    std::string_view more("\0\0\0\1x", 5);
    if (decoder.Feed(&more, &frame) != FrameDecoder::State::kError) abort();
  }
  return 0;
}
