// Factory functions of the bundled backends. Each returns an interface; the implementation
// types stay private.
#ifndef IM_BACKENDS_H_
#define IM_BACKENDS_H_

#include <memory>
#include <string>

#include "im/offline_queue.h"
#include "im/result.h"
#include "im/router.h"
#include "im/session_store.h"

namespace im {

// In-memory sessions, sharded by user.
std::shared_ptr<SessionStore> NewMemorySessionStore();

// This node's connections only.
std::shared_ptr<Router> NewLocalRouter();

// In-memory inboxes with the full seq/sync/ack/retention/dedup semantics; lost on exit (each
// start is a new epoch).
std::shared_ptr<OfflineQueue> NewMemoryOfflineQueue(OfflineQueueOptions options = {});

}  // namespace im

#endif  // IM_BACKENDS_H_
