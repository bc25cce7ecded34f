#include "protocol/codec.h"

#include <limits>
#include <string>

#include "protocol/json.h"

namespace im::internal {

Status ParseRequest(std::string_view text, Request* out) {
  out->has_id = false;
  out->id = 0;
  out->cmd.clear();
  out->body = nullptr;
  // UTF-8 is validated while parsing: nothing malformed is stored or relayed, never "repaired".
  if (Status s = ParseJson(text, &out->doc); !s.ok()) return s;
  if (!out->doc.IsObject()) {
    return Status::Error(Code::kBadRequest, "bad_json", "a frame must be a JSON object");
  }
  auto id = out->doc.FindMember("id");
  if (id != out->doc.MemberEnd()) {
    if (!id->value.IsUint64() || id->value.GetUint64() > std::numeric_limits<uint32_t>::max()) {
      return Status::Error(Code::kBadRequest, "bad_json", "'id' must be an unsigned 32-bit integer");
    }
    out->has_id = true;
    out->id = static_cast<uint32_t>(id->value.GetUint64());
  }
  auto cmd = out->doc.FindMember("cmd");
  if (cmd == out->doc.MemberEnd() || !cmd->value.IsString() ||
      cmd->value.GetStringLength() == 0 || cmd->value.GetStringLength() > 64) {
    return Status::Error(Code::kBadRequest, "bad_json", "'cmd' must be a string of 1-64 bytes");
  }
  out->cmd.assign(cmd->value.GetString(), cmd->value.GetStringLength());
  auto body = out->doc.FindMember("body");
  if (body != out->doc.MemberEnd()) {
    if (body->value.IsObject()) {
      out->body = &body->value;
    } else if (!body->value.IsNull()) {
      return Status::Error(Code::kBadRequest, "bad_json", "'body' must be an object");
    }
  }
  return Status::OK();
}

std::string EncodeResponse(const Request& request, std::string_view body_json) {
  // Assembled directly (the same bytes JsonWriter wrote): the answer to every command.
  std::string out;
  out.reserve(48 + request.cmd.size() + body_json.size());
  out.push_back('{');
  if (request.has_id) {
    out.append("\"id\":");
    AppendDecimal(&out, static_cast<uint64_t>(request.id));
    out.push_back(',');
  }
  out.append("\"cmd\":");
  AppendJsonString(&out, request.cmd);
  out.append(",\"code\":0");
  if (!body_json.empty()) {
    out.append(",\"body\":");
    out.append(body_json);
  }
  out.push_back('}');
  return out;
}

std::string EncodeError(bool has_id, uint32_t id, std::string_view cmd, const Status& status) {
  JsonWriter w;
  w.StartObject();
  if (has_id) w.Field("id", static_cast<uint64_t>(id));
  if (!cmd.empty()) w.Field("cmd", cmd);
  w.Field("code", static_cast<int>(status.code()));
  w.Field("error", status.error());
  w.Field("message", status.message());
  if (status.retry_after_ms() > 0) w.Field("retry_after_ms", status.retry_after_ms());
  w.EndObject();
  return w.str();
}

std::string EncodePush(std::string_view cmd, std::string_view body_json) {
  JsonWriter w;
  w.StartObject();
  w.Field("cmd", cmd);
  w.Key("body");
  if (body_json.empty()) {
    w.StartObject();
    w.EndObject();
  } else {
    w.Raw(body_json);
  }
  w.EndObject();
  return w.str();
}

namespace {
// Everything of a message object after "seq": mid, from, to/group, type, body, extra, ts.
void WriteMessageTail(JsonWriter& w, const Message& m) {
  w.Key("mid");
  w.Id64(m.mid);
  w.Field("from", m.from);
  if (!m.group.empty()) {
    w.Field("group", m.group);
  } else {
    w.Field("to", m.to);
  }
  w.Field("type", m.type);
  w.Field("body", m.body);
  if (!m.extra.empty()) {
    w.Key("extra");
    w.Raw(m.extra);
  }
  w.Field("ts", static_cast<int64_t>(m.ts));
  if (m.gseq != 0) w.Field("gseq", m.gseq);
}
}  // namespace

void WriteMessageFields(JsonWriter& w, uint64_t seq, const Message& m) {
  w.Field("seq", seq);
  WriteMessageTail(w, m);
}

std::string EncodeMessageObject(uint64_t seq, const Message& m) {
  JsonWriter w;
  w.StartObject();
  WriteMessageFields(w, seq, m);
  w.EndObject();
  return w.str();
}

ChatPushEncoder::ChatPushEncoder(const Message& message) {
  JsonWriter w;
  w.StartObject();
  WriteMessageTail(w, message);
  w.EndObject();
  // Drop the leading '{': the head supplies it together with the seq, and close the envelope.
  std::string tail(w.view().substr(1));
  tail += '}';
  tail_ = std::make_shared<const std::string>(std::move(tail));
}

Frame ChatPushEncoder::ForSeq(uint64_t seq) const {
  Frame f;
  f.head.reserve(48);
  f.head = "{\"cmd\":\"chat.message\",\"body\":{\"seq\":";
  f.head += std::to_string(seq);
  f.head += ',';
  f.tail = tail_;
  return f;
}

}  // namespace im::internal
