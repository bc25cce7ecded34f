// Running an Automaton over a text: the hot loop, the whole-word rule, masking.

#include <algorithm>
#include <string>
#include <vector>

#include "filter/automaton.h"
#include "filter/normalizer.h"

namespace im {
namespace internal {
namespace {

// A stream code point in the ring: (begin << kBeginShift) | flags, begin being the byte offset of
// the original character it came from.
constexpr uint64_t kSepBefore = 1;  // a separator came between this code point and the last
constexpr uint64_t kWordItem = 4;   // a word character (whole-word rule): the entry's kWordBit
constexpr int kBeginShift = 3;

// A match waiting for the next code point to learn whether a word ends there.
struct Pending {
  int32_t pattern;
  uint64_t last;  // stream index of its last code point
};

// Per-thread buffers, so a Check allocates nothing but a masked text. The ring holds the last
// (longest word + 2) stream code points: a match, the one before it and the one after it.
struct Scratch {
  std::vector<uint64_t> ring;
  std::vector<Pending> pending;
  std::vector<size_t> masked;       // byte offsets of matched original characters
  std::vector<uint32_t> expansion;  // entries of one astral code point
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

size_t Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace

// The cold half of one Check: what happens once a word may have matched. The hot loop (Scan)
// keeps the stream position and the state in registers and calls in here only when the state
// reports a word or a word waits for its end.
class Automaton::Matcher {
 public:
  static constexpr int kGo = 1;       // Report: the scan goes on
  static constexpr int kPending = 2;  // Report: a word waits for its end

  Matcher(const Automaton& a, FilterMode mode, Scratch* scratch)
      : a_(a),
        reject_(mode == FilterMode::kReject),
        pending_(scratch->pending),
        masked_(scratch->masked) {
    size_t ring = 4;
    while (ring < a.max_length_ + 2) ring *= 2;
    if (scratch->ring.size() < ring) scratch->ring.resize(ring);
    ring_ = scratch->ring.data();
    ring_mask_ = ring - 1;
    pending_.clear();
    masked_.clear();
  }

  uint64_t* ring() const { return ring_; }
  uint64_t ring_mask() const { return ring_mask_; }
  int32_t first_match() const { return first_; }

  // The words ending at `state`, after `count` stream code points. Returns kGo and kPending bits.
  // Out of line, like ResolvePending: the hot loop only calls them.
  [[gnu::noinline]] int Report(int32_t state, uint64_t count) {
    const Slot* slots = a_.slots_.data();
    const int32_t* report = a_.report_.data();
    for (int32_t r = report[state]; r != 0; r = report[slots[r].fail]) {
      for (int32_t p = a_.first_pattern_[r]; p >= 0; p = a_.patterns_[p].next) {
        const Pattern& pat = a_.patterns_[p];
        if (!Fits(pat, count - pat.length)) continue;
        if (pat.last_word) {
          pending_.push_back(Pending{p, count - 1});
        } else if (!Accept(p, count - 1)) {
          return 0;
        }
      }
    }
    return kGo | (pending_.empty() ? 0 : kPending);
  }

  // Settles the words waiting for their end: they stand when `ended` (a separator, a non-word
  // character or the end of the text came next). Returns false once the scan can stop.
  [[gnu::noinline]] bool ResolvePending(bool ended) {
    bool go = true;
    for (size_t i = 0; ended && go && i < pending_.size(); ++i) {
      go = Accept(pending_[i].pattern, pending_[i].last);
    }
    pending_.clear();
    return go;
  }

  // The byte offsets of the characters to mask, sorted.
  const std::vector<size_t>& Masked() {
    std::sort(masked_.begin(), masked_.end());
    masked_.erase(std::unique(masked_.begin(), masked_.end()), masked_.end());
    return masked_;
  }

 private:
  // The whole-word rule (filter/automaton.h) for a match starting at stream index `start`,
  // except the end, which waits for the next code point.
  bool Fits(const Pattern& pat, uint64_t start) const {
    if (pat.first_word && start > 0 && !(At(start) & kSepBefore) && (At(start - 1) & kWordItem)) {
      return false;
    }
    const uint8_t* listed = a_.sep_before_.data() + pat.seps;
    bool all_separated = true;  // spelled out: "f.u.c.k"
    bool as_listed = true;      // separators only where the listed word has them
    for (uint32_t k = 1; k < pat.length; ++k) {
      const uint64_t x = At(start + k - 1), y = At(start + k);
      if (!(x & y & kWordItem)) continue;
      if (y & kSepBefore) {
        as_listed = as_listed && listed[k];
      } else {
        all_separated = false;
      }
      if (!as_listed && !all_separated) return false;
    }
    return true;
  }

  bool Accept(int32_t p, uint64_t last) {
    if (first_ < 0) first_ = p;
    if (reject_) return false;
    for (uint64_t k = last + 1 - a_.patterns_[p].length; k <= last; ++k) {
      const size_t begin = At(k) >> kBeginShift;
      // Code points of one character (a ligature, a Hangul syllable) mask it once.
      if (masked_.empty() || masked_.back() != begin) masked_.push_back(begin);
    }
    return true;
  }

  uint64_t At(uint64_t index) const { return ring_[index & ring_mask_]; }

  const Automaton& a_;
  const bool reject_;
  std::vector<Pending>& pending_;
  std::vector<size_t>& masked_;
  uint64_t* ring_ = nullptr;
  uint64_t ring_mask_ = 0;
  int32_t first_ = -1;
};

// Where the scan stands. The hot loop keeps it in registers: the steps below take and return it
// by value (16 bytes, two registers).
struct Automaton::Cursor {
  uint64_t count = 0;    // stream code points so far
  int32_t state = 0;     // of the automaton
  uint8_t sep = 0;       // kSepBefore when a separator came since the last stream code point
  bool pending = false;  // a word waits for its end
  bool go = true;        // false once the scan can stop
};

// What the steps read: locals of Scan, so stores into the ring cannot alias them.
struct Automaton::Tables {
  uint64_t* ring;
  uint64_t ring_mask;
  const Slot* slots;
};

inline Automaton::Cursor Automaton::Separator(Cursor c, Matcher* m) {
  c.sep = kSepBefore;
  if (c.pending) {
    c.pending = false;
    c.go = m->ResolvePending(true);
  }
  return c;
}

inline Automaton::Cursor Automaton::Content(Cursor c, uint32_t entry, size_t begin, const Tables& t,
                                            Matcher* m) {
  static_assert(kWordItem == kWordBit, "the ring takes the word flag straight from the entry");
  if (c.pending) {
    c.pending = false;
    if (!m->ResolvePending((entry & kWordBit) == 0)) {
      c.go = false;
      return c;
    }
  }
  t.ring[c.count & t.ring_mask] =
      (static_cast<uint64_t>(begin) << kBeginShift) | (entry & kWordBit) | c.sep;
  c.sep = 0;
  ++c.count;
  const auto symbol = static_cast<int32_t>(entry >> kPayloadShift);
  int32_t s = c.state;
  c.state = 0;  // also when the symbol is in no listed word: every word in progress is broken
  if (symbol == 0) return c;
  for (;; s = t.slots[s].fail) {
    const int32_t next = t.slots[s].base() + symbol;
    if (t.slots[next].check == s) {
      c.state = next;
      break;
    }
    if (s == 0) break;
  }
  if (t.slots[c.state].reports()) {
    const int r = m->Report(c.state, c.count);
    c.pending = (r & Matcher::kPending) != 0;
    c.go = (r & Matcher::kGo) != 0;
  }
  return c;
}

size_t Automaton::Scan(std::string_view text, Matcher* m, std::vector<uint32_t>* astral) const {
  const Tables tables{m->ring(), m->ring_mask(), slots_.data()};
  const uint32_t* const table = char_table_.data();
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  Cursor c;
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t len;
    const unsigned char c0 = bytes[i];
    if (c0 < 0x80) {
      cp = c0;
      len = 1;
    } else if (c0 >= 0xE0 && c0 < 0xF0 && i + 2 < n && (bytes[i + 1] & 0xC0) == 0x80 &&
               (bytes[i + 2] & 0xC0) == 0x80) {  // most of CJK: decoded inline
      cp = ((c0 & 0x0Fu) << 12) | ((bytes[i + 1] & 0x3Fu) << 6) | (bytes[i + 2] & 0x3Fu);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalid;
      len = 3;
    } else {
      len = DecodeUtf8(text, i, &cp);
      if (len == 0) return kInvalid;
    }
    const size_t begin = i;
    i += len;
    const uint32_t entry = cp < 0x10000 ? table[cp] : AstralEntry(cp, astral);
    switch (entry & kKindMask) {
      case kContent:
        c = Content(c, entry, begin, tables, m);
        break;
      case kSeparator:
        c = Separator(c, m);
        break;
      case kIgnore:
        break;
      default: {  // kMulti
        const uint32_t* items =
            (cp < 0x10000 ? expansions_.data() : astral->data()) + (entry >> kPayloadShift);
        for (uint32_t k = 1; k <= items[0] && c.go; ++k) {
          c = (items[k] & kKindMask) == kSeparator ? Separator(c, m)
                                                   : Content(c, items[k], begin, tables, m);
        }
      }
    }
    if (!c.go) return i;
  }
  if (c.pending) m->ResolvePending(true);  // the text ended: so did the word
  return i;
}

FilterDecision Automaton::Check(std::string_view text, FilterMode mode) const {
  Scratch& scratch = ThreadScratch();
  Matcher m(*this, mode, &scratch);
  FilterDecision decision;
  size_t i = Scan(text, &m, &scratch.expansion);
  if (i == kInvalid) {
    decision.action = FilterAction::kReject;
    return decision;
  }
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  // A match ends a reject-mode scan early; invalid UTF-8 after it still decides the outcome, so
  // the result does not depend on where the match was.
  while (i < n) {
    uint32_t cp;
    const size_t len = bytes[i] < 0x80 ? 1 : DecodeUtf8(text, i, &cp);
    if (len == 0) {
      decision.action = FilterAction::kReject;
      return decision;
    }
    i += len;
  }

  if (m.first_match() < 0) return decision;
  decision.matched = patterns_[m.first_match()].word;
  if (mode == FilterMode::kReject) {
    decision.action = FilterAction::kReject;
    return decision;
  }
  decision.action = FilterAction::kMask;
  std::string& out = decision.text;
  out.reserve(n);
  size_t pos = 0;
  for (size_t begin : m.Masked()) {
    if (begin < pos) continue;
    out.append(text.substr(pos, begin - pos));
    out.push_back('*');
    pos = begin + Utf8Length(bytes[begin]);
    // Combining marks on a masked character go with it, or they would sit on the '*'.
    while (pos < n) {
      uint32_t cp;
      const size_t len = DecodeUtf8(text, pos, &cp);
      if (len == 0) break;  // cannot happen: the scan validated the whole text
      const bool mark = cp < 0x10000 ? (char_table_[cp] & kMarkBit) != 0 : IsCombiningMark(cp);
      if (!mark) break;
      pos += len;
    }
  }
  out.append(text.substr(pos));
  return decision;
}

}  // namespace internal
}  // namespace im
