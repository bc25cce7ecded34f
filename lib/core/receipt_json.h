// The body that answers a stored send, shared by chat.send and POST /v1/messages.
#ifndef IM_CORE_RECEIPT_JSON_H_
#define IM_CORE_RECEIPT_JSON_H_

#include <string>

#include "im/server.h"
#include "protocol/json.h"

namespace im::internal {

// {"mid":"<id64>","seq":N,"ts":MS}, when `with_duplicate` "duplicate":bool, and "gseq":N for a
// group message that has one.
// Assembled directly (numbers only; the bytes JsonWriter wrote): the answer to every send.
inline std::string ReceiptJson(const SendReceipt& r, bool with_duplicate) {
  std::string out;
  out.reserve(96);
  out.append("{\"mid\":\"");
  AppendDecimal(&out, r.mid);
  out.append("\",\"seq\":");
  AppendDecimal(&out, r.seq);
  out.append(",\"ts\":");
  AppendDecimal(&out, static_cast<int64_t>(r.ts));
  if (with_duplicate) out.append(r.duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false");
  if (r.gseq != 0) {
    out.append(",\"gseq\":");
    AppendDecimal(&out, r.gseq);
  }
  out.push_back('}');
  return out;
}

}  // namespace im::internal

#endif  // IM_CORE_RECEIPT_JSON_H_
