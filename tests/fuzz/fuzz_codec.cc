// The envelope codec: any frame text either parses into a request or fails with 400 bad_json,
// and every answer the server would encode for it is one well-formed JSON object that carries
// the request's id and cmd back.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "im/status.h"
#include "protocol/codec.h"
#include "protocol/json.h"

namespace {

// Parses an encoded frame and checks the envelope fields it must carry: the id when known,
// the cmd when not empty, and a code unless it is a push.
void CheckAnswer(const std::string& json, bool has_id, uint32_t id, std::string_view cmd,
                 bool push = false) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) abort();
  auto id_member = doc.FindMember("id");
  if (has_id != (id_member != doc.MemberEnd())) abort();
  if (has_id && (!id_member->value.IsUint() || id_member->value.GetUint() != id)) abort();
  auto cmd_member = doc.FindMember("cmd");
  if (cmd.empty() != (cmd_member == doc.MemberEnd())) abort();
  if (!cmd.empty() && (!cmd_member->value.IsString() ||
                       std::string_view(cmd_member->value.GetString(),
                                        cmd_member->value.GetStringLength()) != cmd)) {
    abort();
  }
  auto code = doc.FindMember("code");
  if (push != (code == doc.MemberEnd())) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  im::internal::Request request;
  const im::Status status = im::internal::ParseRequest(text, &request);
  if (!status.ok()) {
    if (status.code() != im::Code::kBadRequest || status.error() != "bad_json") abort();
    // The error answer for a frame that did not parse (with the id when one could be read).
    CheckAnswer(im::internal::EncodeError(request.has_id, request.id, "", status),
                request.has_id, request.id, "");
    return 0;
  }
  if (request.cmd.empty() || request.cmd.size() > 64) abort();
  if (request.body != nullptr && !request.body->IsObject()) abort();

  // A response echoing the body as its own, an error and a push with it.
  const std::string body =
      request.body != nullptr ? im::internal::ToJson(*request.body) : std::string();
  CheckAnswer(im::internal::EncodeResponse(request, body), request.has_id, request.id,
              request.cmd);
  CheckAnswer(im::internal::EncodeError(request, im::Status::Error(im::Code::kForbidden,
                                                                   request.cmd, request.cmd)),
              request.has_id, request.id, request.cmd);
  CheckAnswer(im::internal::EncodePush(request.cmd, body), false, 0, request.cmd, true);

  // A message built from the body's strings, as a stored message and as a push.
  if (request.body != nullptr) {
    im::Message m;
    im::internal::Fields fields(request.body);
    (void)fields.OptionalString("to", &m.to);
    (void)fields.OptionalString("group", &m.group);
    (void)fields.OptionalString("type", &m.type);
    (void)fields.OptionalString("body", &m.body);
    (void)fields.OptionalObject("extra", &m.extra);
    uint64_t seq = 0;
    (void)fields.OptionalUint64("seq", &seq);
    m.from = request.cmd;
    const std::string object = im::internal::EncodeMessageObject(seq, m);
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(object.data(), object.size());
    if (doc.HasParseError() || !doc.IsObject()) abort();
    const std::string push = im::internal::ChatPushEncoder(m).ForSeq(seq).ToString();
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(push.data(), push.size());
    if (doc.HasParseError() || !doc.IsObject()) abort();
    auto push_body = doc.FindMember("body");
    if (push_body == doc.MemberEnd() || !push_body->value.IsObject()) abort();
    auto push_seq = push_body->value.FindMember("seq");
    if (push_seq == push_body->value.MemberEnd() || !push_seq->value.IsUint64() ||
        push_seq->value.GetUint64() != seq) {
      abort();
    }
  }
  return 0;
}
