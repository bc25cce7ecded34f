// Client-side bookkeeping for exactly-once, gap-free delivery: which inbox seqs were delivered
// (the contiguous prefix is where a resync starts) and which mids were seen recently.
//
// Thread-safety: none; the client guards both with its own mutex.
#ifndef IM_CLIENT_SEQ_TRACKER_H_
#define IM_CLIENT_SEQ_TRACKER_H_

#include <cstdint>
#include <deque>
#include <set>
#include <unordered_set>

namespace im::internal {

class SeqTracker {
 public:
  // Every seq <= `synced` counts as delivered; marks above it are kept.
  void Reset(uint64_t synced) {
    synced_ = synced;
    above_.erase(above_.begin(), above_.upper_bound(synced));
    Advance();
  }
  void Mark(uint64_t seq) {
    if (seq <= synced_) return;
    above_.insert(seq);
    Advance();
  }
  uint64_t synced() const { return synced_; }
  // True when some seq above synced() was seen: a hole below it waits for a sync.
  bool has_hole() const { return !above_.empty(); }
  uint64_t highest() const { return above_.empty() ? synced_ : *above_.rbegin(); }
  // How many seqs above synced() are marked (the client bounds it: ClientOptions::
  // max_held_pushes).
  size_t above() const { return above_.size(); }

 private:
  void Advance() {
    while (!above_.empty() && *above_.begin() == synced_ + 1) {
      synced_ = *above_.begin();
      above_.erase(above_.begin());
    }
  }
  uint64_t synced_ = 0;
  std::set<uint64_t> above_;
};

// Remembers the last `capacity` mids; Insert is false for one already seen.
class MidWindow {
 public:
  explicit MidWindow(size_t capacity) : capacity_(capacity ? capacity : 1) {}
  bool Insert(uint64_t mid) {
    if (!seen_.insert(mid).second) return false;
    order_.push_back(mid);
    if (order_.size() > capacity_) {
      seen_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  bool Contains(uint64_t mid) const { return seen_.count(mid) != 0; }

 private:
  size_t capacity_;
  std::unordered_set<uint64_t> seen_;
  std::deque<uint64_t> order_;
};

}  // namespace im::internal

#endif  // IM_CLIENT_SEQ_TRACKER_H_
