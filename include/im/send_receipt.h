// SendReceipt: what a stored send answers. Its own header so that the storage pipeline can
// name it without the whole server API.
#ifndef IM_SEND_RECEIPT_H_
#define IM_SEND_RECEIPT_H_

#include <cstdint>

#include "im/types.h"

namespace im {

// The outcome of a send: the message id, the sender's seq (0 for server-side sends) and time.
struct SendReceipt {
  uint64_t mid = 0;
  uint64_t seq = 0;
  TimestampMs ts = 0;
  bool duplicate = false;
  uint64_t gseq = 0;  // a group message's group sequence (sharded Redis inboxes), else 0
};

}  // namespace im

#endif  // IM_SEND_RECEIPT_H_
