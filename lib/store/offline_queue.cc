#include "im/offline_queue.h"

#include <algorithm>
#include <vector>

#include "store/append_rules.h"

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

void OfflineQueue::AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> batch,
                                    AppendDone done) {
  done(AppendBatch(*batch));
}

namespace internal {

Status ValidateAppendRequest(const AppendRequest& request) {
  if (request.message == nullptr) return Status::BadRequest("append without a message");
  const size_t n = request.recipients.size();
  if (n == 0) return Status::BadRequest("append without recipients");
  if (request.sender_index < -1 || request.sender_index >= static_cast<int64_t>(n)) {
    return Status::BadRequest("sender_index out of range");
  }
  std::vector<const UserKey*> sorted;
  sorted.reserve(n);
  for (const UserKey& user : request.recipients) sorted.push_back(&user);
  std::sort(sorted.begin(), sorted.end(),
            [](const UserKey* a, const UserKey* b) { return *a < *b; });
  for (size_t i = 1; i < n; ++i) {
    if (*sorted[i - 1] == *sorted[i]) return Status::BadRequest("duplicate recipient");
  }
  return Status::OK();
}

}  // namespace internal
}  // namespace im
