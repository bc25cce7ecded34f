// The AppendRequest rules shared by the OfflineQueue backends, so memory and LevelDB refuse the
// same request with the same status.
#ifndef IM_STORE_APPEND_RULES_H_
#define IM_STORE_APPEND_RULES_H_

#include "im/offline_queue.h"
#include "im/status.h"

namespace im::internal {

// 400 for a request without a message or recipients, a sender_index out of range, or a
// repeated recipient (it would get the message twice under two seqs; the contract forbids it).
Status ValidateAppendRequest(const AppendRequest& request);

}  // namespace im::internal

#endif  // IM_STORE_APPEND_RULES_H_
