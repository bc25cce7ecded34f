// Automaton: the compiled words list of the sensitive-word filter. An Aho-Corasick automaton
// over normalised code points (filter/normalizer.h), stored as a double array so one goto is
// two loads, plus a per-code-point table that turns a BMP code point straight into the
// automaton's symbol (normalisation included) without calling utf8proc on the hot path.
//
// The whole-word rule. Let the stream be the normalised text without separators, each code
// point remembering whether a separator came right before it. A listed word whose first
// (last) code point is a word character (IsWordChar: Latin letter or digit) matches only where
// the stream code point before (after) the match is not a word character, or a separator lies
// between them, or the text starts (ends) there. Inside the match, look at each junction of two
// word characters: the match stands if the text has separators at none of them, or only where
// the listed word itself had one ("son of a bitch" also matches "sonofabitch"), or at all of
// them (spelled out: "f.u.c.k", "f u c k"). So "class" does not contain "ass", "fu ck" and
// "gl ass" do not match either, and, the price of spelling-out, "c l a s s" does contain "ass".
// Junctions next to a non-word character (CJK) are unconstrained: "敏 感 词" matches.
//
// Thread-safety: immutable once built; Check is safe from any number of threads at once (its
// scratch buffers are thread-local).
#ifndef IM_FILTER_AUTOMATON_H_
#define IM_FILTER_AUTOMATON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "im/content_filter.h"

namespace im {
namespace internal {

// A listed word is at most this many normalised code points long; longer words are refused
// (the match window, kept per thread, is sized by the longest word).
inline constexpr size_t kMaxWordCodePoints = 256;

class Automaton {
 public:
  // Compiles `words` (valid UTF-8, each at most kMaxWordCodePoints normalised code points).
  // Words that normalise to nothing (only separators, say) are skipped, since they would match
  // everywhere; words equal after normalisation, separators included, count once (the first
  // spelling is reported).
  static std::shared_ptr<const Automaton> Build(const std::vector<std::string>& words);

  Automaton(const Automaton&) = delete;
  Automaton& operator=(const Automaton&) = delete;

  // Checks `text`. kAllow (empty `text`) when nothing matches; kReject with `matched` set in
  // reject mode; kMask with the masked text in mask mode. Text that is not valid UTF-8 is
  // kReject with an empty `matched`: it is refused, never repaired.
  FilterDecision Check(std::string_view text, FilterMode mode) const;

  size_t word_count() const { return patterns_.size(); }

 private:
  // One Check's matching state and its steps (automaton_scan.cc).
  class Matcher;
  struct Cursor;
  struct Tables;
  static Cursor Content(Cursor c, uint32_t entry, size_t begin, const Tables& t, Matcher* m);
  static Cursor Separator(Cursor c, Matcher* m);
  // Runs the automaton over `text` until the end or until `m` says stop; returns where it
  // stopped, or kInvalid at malformed UTF-8.
  static constexpr size_t kInvalid = ~size_t{0};
  size_t Scan(std::string_view text, Matcher* m, std::vector<uint32_t>* astral) const;

  // Entries of char_table_ and expansions_: bits 0-1 a kind, bit 2 the word flag, bit 3 the
  // combining-mark flag, bits 4-31 the symbol (kContent; 0 = in no listed word) or the index
  // of an expansion (kMulti: expansions_[index] is the count, the entries follow).
  static constexpr uint32_t kContent = 0;
  static constexpr uint32_t kSeparator = 1;
  static constexpr uint32_t kIgnore = 2;
  static constexpr uint32_t kMulti = 3;
  static constexpr uint32_t kKindMask = 3;
  static constexpr uint32_t kWordBit = 4;
  static constexpr uint32_t kMarkBit = 8;
  static constexpr int kPayloadShift = 4;

  // A double-array slot, 12 bytes so more of the automaton stays in cache: base and check make
  // the goto function (state t is the child of s by symbol c when slots_[t].check == s and
  // t == base(s) + c); fail is the Aho-Corasick failure link. The low bit of `base2` says
  // whether report_ is set for this state, so a step of the hot loop reads one slot.
  struct Slot {
    int32_t base2 = 0;   // base << 1 | (report_[this] != 0)
    int32_t check = -1;  // the parent state; -1 while free
    int32_t fail = 0;
    int32_t base() const { return base2 >> 1; }
    bool reports() const { return (base2 & 1) != 0; }
  };

  struct Pattern {
    std::string word;     // as listed
    uint32_t length = 0;  // normalised code points (separators excluded)
    uint32_t seps = 0;    // sep_before_[seps + k]: the listed word had a separator before k
    int32_t next = -1;    // the next pattern ending in the same state
    bool first_word = false;
    bool last_word = false;
  };

  Automaton() = default;

  // The entry for a code point, normalising it now; a kMulti expansion is appended to
  // `expansion`. AstralEntry does the same into a cleared `expansion`, for Check.
  uint32_t EntryFor(uint32_t cp, std::vector<uint32_t>* expansion) const;
  uint32_t AstralEntry(uint32_t cp, std::vector<uint32_t>* expansion) const;
  uint32_t EncodeNormChar(bool separator, bool word, uint32_t cp) const;
  void BuildCharTable();
  void BuildTrie(const std::vector<std::vector<uint32_t>>& words);

  std::vector<uint32_t> char_table_;                // indexed by BMP code point
  std::vector<uint32_t> expansions_;                // kMulti entries of char_table_
  std::unordered_map<uint32_t, uint32_t> symbols_;  // normalised code point -> symbol (>= 1)
  std::vector<Slot> slots_;                         // slot 0 is the root
  // Per slot: the nearest state on the failure chain (this one included) where a word ends;
  // 0 when none.
  std::vector<int32_t> report_;
  std::vector<int32_t> first_pattern_;  // per slot: first pattern ending there, or -1
  std::vector<Pattern> patterns_;
  std::vector<uint8_t> sep_before_;
  size_t max_length_ = 0;  // of any pattern, in code points
};

}  // namespace internal
}  // namespace im

#endif  // IM_FILTER_AUTOMATON_H_
