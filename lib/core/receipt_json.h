// The body that answers a stored send, shared by chat.send and POST /v1/messages.
#ifndef IM_CORE_RECEIPT_JSON_H_
#define IM_CORE_RECEIPT_JSON_H_

#include <string>

#include "im/server.h"
#include "protocol/json.h"

namespace im::internal {

// {"mid":"<id64>","seq":N,"ts":MS}, when `with_duplicate` "duplicate":bool, and "gseq":N for a
// group message that has one.
inline std::string ReceiptJson(const SendReceipt& r, bool with_duplicate) {
  JsonWriter w;
  w.StartObject();
  w.Key("mid");
  w.Id64(r.mid);
  w.Field("seq", r.seq);
  w.Field("ts", static_cast<int64_t>(r.ts));
  if (with_duplicate) w.Field("duplicate", r.duplicate);
  if (r.gseq != 0) w.Field("gseq", r.gseq);
  w.EndObject();
  return w.str();
}

}  // namespace im::internal

#endif  // IM_CORE_RECEIPT_JSON_H_
