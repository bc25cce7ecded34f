#include "im/offline_queue.h"

#include <vector>

namespace im {

// The portable fallback: each request is its own append, so dedup within the batch works
// because a request sees the keys recorded by the ones before it. Backends with a real write
// batch (LevelDB) override this to pay one storage write for the whole batch.
std::vector<Result<AppendResult>> OfflineQueue::AppendBatch(
    const std::vector<AppendRequest>& batch) {
  std::vector<Result<AppendResult>> results;
  results.reserve(batch.size());
  for (const AppendRequest& request : batch) results.push_back(Append(request));
  return results;
}

}  // namespace im
