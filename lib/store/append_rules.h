// The AppendRequest rules shared by the OfflineQueue backends, so memory and LevelDB refuse the
// same request with the same status.
#ifndef IM_STORE_APPEND_RULES_H_
#define IM_STORE_APPEND_RULES_H_

#include <cstdint>
#include <limits>

#include "im/offline_queue.h"
#include "im/status.h"

namespace im::internal {

// `now - duration`, saturating instead of overflowing for absurd option values (retention and
// dedup cut-offs).
inline TimestampMs SaturatingSub(TimestampMs now, int64_t duration) {
  constexpr TimestampMs kMin = std::numeric_limits<TimestampMs>::min();
  constexpr TimestampMs kMax = std::numeric_limits<TimestampMs>::max();
  if (duration > 0 && now < kMin + duration) return kMin;
  if (duration < 0 && now > kMax + duration) return kMax;
  return now - duration;
}

// The entries an append of `request` keeps in each inbox it writes: the request's own max_inbox
// when it sets a smaller one than the queue's `queue_max`.
inline size_t AppendMaxInbox(const AppendRequest& request, size_t queue_max) {
  return request.max_inbox > 0 && request.max_inbox < queue_max ? request.max_inbox : queue_max;
}

// 400 for a request without a message or recipients, a sender_index out of range, or a
// repeated recipient (it would get the message twice under two seqs; the contract forbids it).
Status ValidateAppendRequest(const AppendRequest& request);

}  // namespace im::internal

#endif  // IM_STORE_APPEND_RULES_H_
