// Storage decorators that time every call into im_store_duration_seconds{op}. The server wraps
// the stores it is given, so every caller (handlers, committer, REST) is measured alike.
//
// Thread-safety: as the wrapped store; the histograms are lock-free.
#ifndef IM_OPS_TIMED_STORES_H_
#define IM_OPS_TIMED_STORES_H_

#include <memory>

#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/session_store.h"
#include "im/user_store.h"
#include "ops/metrics.h"

namespace im::internal {

// Each returns `store` wrapped, or null for a null store. `metrics` must outlive the result.
std::shared_ptr<OfflineQueue> TimeOfflineQueue(std::shared_ptr<OfflineQueue> store, Metrics& m);
std::shared_ptr<GroupService> TimeGroupService(std::shared_ptr<GroupService> store, Metrics& m);
std::shared_ptr<UserStore> TimeUserStore(std::shared_ptr<UserStore> store, Metrics& m);
std::shared_ptr<SessionStore> TimeSessionStore(std::shared_ptr<SessionStore> store, Metrics& m);

}  // namespace im::internal

#endif  // IM_OPS_TIMED_STORES_H_
