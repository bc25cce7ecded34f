// The wire protocol v1 envelope (docs/protocol.md): parse a request frame, encode responses,
// errors and pushes. One codec serves TCP and WebSocket; framing is the transports' job.
//
// Thread-safety: free functions over caller-owned values.
#ifndef IM_PROTOCOL_CODEC_H_
#define IM_PROTOCOL_CODEC_H_

#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "im/connection.h"
#include "im/status.h"
#include "im/types.h"

namespace im::internal {

// A parsed request. `body` points into `doc` (null when the request had no body).
// Not copyable or movable: `doc` allocates from `pool`, which starts in `pool_buffer`.
struct Request {
  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  bool has_id = false;
  uint32_t id = 0;
  std::string cmd;
  // The parsed values live in this inline buffer (a typical command fits in it), then in 4 KiB
  // chunks (or one chunk of the size a large value needs). RapidJSON's default is a first
  // chunk of 64 KiB per document, which every request in flight would hold.
  alignas(8) char pool_buffer[1024];
  rapidjson::MemoryPoolAllocator<> pool{pool_buffer, sizeof(pool_buffer), 4096};
  rapidjson::Document doc{&pool};
  const rapidjson::Value* body = nullptr;
};

// Parses one frame into `out`. Fails with 400 bad_json when the text is not a well-formed UTF-8
// JSON object with a string `cmd` (an `id` that is present must be a uint32, a `body` that is
// present must be an object or null). The protocol answers such frames with an error without
// id; `out->has_id`/`id` are still filled in when a valid id could be read.
Status ParseRequest(std::string_view text, Request* out);

// {"id":7,"cmd":"chat.send","code":0,"body":{...}}. `body_json` is an object text, or empty for
// no body.
std::string EncodeResponse(const Request& request, std::string_view body_json);
// {"id":7,"cmd":"chat.send","code":403,"error":"not_member","message":"..."}; id and cmd are
// omitted when unknown. A status with a retry hint adds "retry_after_ms" after "message".
std::string EncodeError(bool has_id, uint32_t id, std::string_view cmd, const Status& status);
inline std::string EncodeError(const Request& request, const Status& status) {
  return EncodeError(request.has_id, request.id, request.cmd, status);
}
// {"cmd":"session.kicked","body":{...}} (no id).
std::string EncodePush(std::string_view cmd, std::string_view body_json);

// Writes the fields of a message as the protocol shows it (inside an object already started):
// seq, mid, from, to or group, type, body, extra (when set), ts.
class JsonWriter;
void WriteMessageFields(JsonWriter& w, uint64_t seq, const Message& m);
// The same object as its own JSON text.
std::string EncodeMessageObject(uint64_t seq, const Message& m);

// Encodes `chat.message` pushes of one message for many receivers: the shared tail (everything
// after the seq) is built once; each receiver's frame only differs in the head holding its seq.
class ChatPushEncoder {
 public:
  explicit ChatPushEncoder(const Message& message);
  // The encoder of a message whose tail another encoder built (tail()), for example on another
  // node: ForSeq gives the same frames.
  explicit ChatPushEncoder(std::shared_ptr<const std::string> tail) : tail_(std::move(tail)) {}
  Frame ForSeq(uint64_t seq) const;
  const std::shared_ptr<const std::string>& tail() const { return tail_; }

 private:
  std::shared_ptr<const std::string> tail_;
};

}  // namespace im::internal

#endif  // IM_PROTOCOL_CODEC_H_
