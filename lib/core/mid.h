// Message ids: 64-bit, time-ordered, unique across nodes:
//   42 bits of milliseconds since 2020-01-01 | 10 bits node number | 12 bits counter.
// 4096 ids per millisecond per node; past that the generator borrows the next millisecond, so
// ids stay unique and increasing even under bursts or a clock that steps back.
//
// Thread-safety: Next() is safe from any thread.
#ifndef IM_CORE_MID_H_
#define IM_CORE_MID_H_

#include <atomic>
#include <cstdint>

#include "im/types.h"

namespace im::internal {

class MidGenerator {
 public:
  static constexpr int64_t kEpochMs = 1577836800000;  // 2020-01-01T00:00:00Z
  explicit MidGenerator(uint16_t node_number) : node_(node_number & 0x3FF) {}

  uint64_t Next(TimestampMs now_ms) {
    uint64_t ms = static_cast<uint64_t>(now_ms > kEpochMs ? now_ms - kEpochMs : 0);
    uint64_t candidate = (ms << 22) | (uint64_t{node_} << 12);
    uint64_t last = last_.load(std::memory_order_relaxed);
    for (;;) {
      uint64_t next = candidate > last ? candidate : last + 1;
      // Keep the node bits intact when the counter overflows into the next millisecond.
      if (((next >> 12) & 0x3FF) != node_) next = (((next >> 22) + 1) << 22) | (uint64_t{node_} << 12);
      if (last_.compare_exchange_weak(last, next, std::memory_order_relaxed)) return next;
    }
  }

  static TimestampMs TimeOf(uint64_t mid) { return static_cast<TimestampMs>(mid >> 22) + kEpochMs; }

 private:
  const uint16_t node_;
  std::atomic<uint64_t> last_{0};
};

}  // namespace im::internal

#endif  // IM_CORE_MID_H_
