// What the LevelDB OfflineQueue has written since it was opened: write batches, records (puts and
// deletes) and bytes (each batch as LevelDB appends it to its log: WriteBatch::ApproximateSize,
// which is the batch's exact encoded size). For storage_bench's records-per-message table and the
// tests that keep those figures from growing. Writes made while opening (a migration, new epochs)
// are not counted.
//
// Thread-safety: the counters are atomics; reading them races only with writes in flight.
#ifndef IM_STORE_LEVELDB_WRITE_STATS_H_
#define IM_STORE_LEVELDB_WRITE_STATS_H_

#include <cstdint>

#include "im/offline_queue.h"

namespace im::internal {

struct LevelDbWriteStats {
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
};

// The totals of `queue` so far; false when `queue` is not a LevelDB OfflineQueue.
bool GetLevelDbWriteStats(const OfflineQueue& queue, LevelDbWriteStats* out);

}  // namespace im::internal

#endif  // IM_STORE_LEVELDB_WRITE_STATS_H_
