// Client-side presentation of group messages in gseq order (docs/protocol.md, "gseq").
//
// On Redis inboxes sharded over several primaries, two messages of one group may reach the
// members' inboxes (and pushes) in different relative orders; each carries the group's
// sequence number gseq. GseqOrder takes messages as they arrive and releases them so that each
// group's messages come out in ascending gseq:
// - gseq 0 (1:1 messages, and every message of an unsharded deployment): released at once.
// - last + 1, where `last` is the gseq released last for that group: released, with the held
//   ones that follow it.
// - below or at `last` (it arrived after its place was given up): released at once, late.
// - above last + 1, or the first of a group since the start (unless its gseq is 1): held
//   until the missing ones arrive or until `hold_ms` after it arrived; then the lowest held one is released and the
//   missing gseqs before it are given up (a message the member was not a recipient of, for
//   example sent before it joined, never arrives).
// Bounds: at most `max_held` messages held in all; one more releases the lowest held message
// of the group whose hold ends first (as if its time were up). A group's hold ends `hold_ms`
// after the arrival of the message it has held longest. At most kMaxGroups groups
// remembered; past it the groups without held messages are forgotten (their next message is
// again "the first").
//
// Thread-safety: none; the client guards it with its own mutex.
#ifndef IM_CLIENT_GSEQ_ORDER_H_
#define IM_CLIENT_GSEQ_ORDER_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "im/client.h"

namespace im::internal {

class GseqOrder {
 public:
  static constexpr size_t kMaxGroups = 10000;
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  GseqOrder(int64_t hold_ms, size_t max_held)
      : hold_ms_(hold_ms), max_held_(max_held ? max_held : 1) {}

  // `m` arrived at `now_ms`; appends to `out` what is released now, in order.
  void Offer(ReceivedMessage m, int64_t now_ms, std::vector<ReceivedMessage>* out) {
    const uint64_t gseq = m.message.gseq;
    if (gseq == 0 || m.message.group.empty()) {
      out->push_back(std::move(m));
      return;
    }
    Group& g = Of(m.message.group);
    if (g.known && gseq <= g.last) {
      out->push_back(std::move(m));
      return;
    }
    if (!g.known && gseq == 1) g.known = true;  // nothing comes before the group's first
    if (g.known && gseq == g.last + 1) {
      g.last = gseq;
      out->push_back(std::move(m));
      Drain(g, out);
      return;
    }
    if (g.held.emplace(gseq, Held{std::move(m), now_ms + hold_ms_}).second) ++held_;
    while (held_ > max_held_) ReleaseFirstDue(kNever, out);
  }

  // The sender's own message `gseq` of `group` (it is not delivered to its sender): counts as
  // released.
  void OwnSent(const std::string& group, uint64_t gseq, std::vector<ReceivedMessage>* out) {
    if (gseq == 0 || group.empty()) return;
    Group& g = Of(group);
    if (!g.known) return;  // the order is not known yet: nothing to fill
    if (gseq == g.last + 1) {
      g.last = gseq;
      Drain(g, out);
    } else if (gseq > g.last + 1) {
      g.own.insert(gseq);
      if (g.own.size() > max_held_) g.own.erase(g.own.begin());  // bounded like the held
    }
  }

  // Releases what waited its full hold by `now_ms`.
  void Expire(int64_t now_ms, std::vector<ReceivedMessage>* out) {
    while (ReleaseFirstDue(now_ms, out)) {
    }
  }

  // When the next hold ends (kNever when nothing is held).
  int64_t NextDeadline() const {
    int64_t next = kNever;
    for (const auto& [name, g] : groups_) next = std::min(next, Deadline(g));
    return next;
  }

  size_t held() const { return held_; }

 private:
  struct Held {
    ReceivedMessage message;
    int64_t deadline;
  };
  struct Group {
    bool known = false;
    uint64_t last = 0;
    std::map<uint64_t, Held> held;
    std::set<uint64_t> own;  // own sends above last + 1
  };

  // When the longest-waiting held message of `g` has waited its hold.
  static int64_t Deadline(const Group& g) {
    int64_t first = kNever;
    for (const auto& [gseq, h] : g.held) first = std::min(first, h.deadline);
    return first;
  }

  Group& Of(const std::string& group) {
    if (groups_.size() >= kMaxGroups && groups_.count(group) == 0) {
      for (auto it = groups_.begin(); it != groups_.end();) {
        it = it->second.held.empty() ? groups_.erase(it) : std::next(it);
      }
    }
    return groups_[group];
  }

  // Releases the held messages (and skips the own sends) that continue `g.last`.
  void Drain(Group& g, std::vector<ReceivedMessage>* out) {
    for (;;) {
      g.own.erase(g.own.begin(), g.own.upper_bound(g.last));
      if (!g.own.empty() && *g.own.begin() == g.last + 1) {
        ++g.last;
        continue;
      }
      auto it = g.held.begin();
      if (it == g.held.end() || it->first > g.last + 1) return;
      if (it->first == g.last + 1) {
        g.last = it->first;
        out->push_back(std::move(it->second.message));
      } else {
        out->push_back(std::move(it->second.message));  // at or below last: late
      }
      g.held.erase(it);
      --held_;
    }
  }

  // The group whose first hold ends first, if that is at or before `now_ms`: gives up the gseqs
  // missing before its lowest held message and releases it and what follows. False when none.
  bool ReleaseFirstDue(int64_t now_ms, std::vector<ReceivedMessage>* out) {
    Group* due = nullptr;
    int64_t first = kNever;
    for (auto& [name, g] : groups_) {
      if (g.held.empty()) continue;
      const int64_t deadline = Deadline(g);
      if (due == nullptr || deadline < first) {
        due = &g;
        first = deadline;
      }
    }
    if (due == nullptr || (now_ms != kNever && first > now_ms)) return false;
    due->known = true;
    due->last = due->held.begin()->first - 1;
    Drain(*due, out);
    return true;
  }

  const int64_t hold_ms_;
  const size_t max_held_;
  size_t held_ = 0;
  std::map<std::string, Group> groups_;
};

// A resync page before it goes through GseqOrder: within each group, its messages with a gseq
// take that group's places in the page in gseq order.
inline void SortByGseq(std::vector<ReceivedMessage>* messages) {
  std::map<std::string, std::vector<size_t>> places;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Message& m = (*messages)[i].message;
    if (m.gseq != 0 && !m.group.empty()) places[m.group].push_back(i);
  }
  for (auto& [group, at] : places) {
    std::vector<ReceivedMessage> sorted;
    for (size_t i : at) sorted.push_back(std::move((*messages)[i]));
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const ReceivedMessage& a, const ReceivedMessage& b) {
                       return a.message.gseq < b.message.gseq;
                     });
    for (size_t k = 0; k < at.size(); ++k) (*messages)[at[k]] = std::move(sorted[k]);
  }
}

}  // namespace im::internal

#endif  // IM_CLIENT_GSEQ_ORDER_H_
