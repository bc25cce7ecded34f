// ContentFilter: decides whether a text may be stored and delivered as is.
//
// Thread-safety: implementations are safe from any thread.
#ifndef IM_CONTENT_FILTER_H_
#define IM_CONTENT_FILTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "im/result.h"

namespace im {

enum class FilterAction {
  kAllow,   // deliver the text unchanged
  kMask,    // deliver `text` (matched characters replaced by '*')
  kReject,  // refuse: 422 content_rejected, nothing stored
};

struct FilterDecision {
  FilterAction action = FilterAction::kAllow;
  std::string text;     // the masked text when action == kMask
  std::string matched;  // the first matched word, for the business log
};

class ContentFilter {
 public:
  virtual ~ContentFilter() = default;
  virtual FilterDecision Check(std::string_view tenant, std::string_view text) const = 0;
};

// A filter that allows everything. The caller owns the result.
std::unique_ptr<ContentFilter> NewAllowAllFilter();

enum class FilterMode {
  kReject,  // a match refuses the text (422 content_rejected)
  kMask,    // each matched character becomes '*'
};

// The sensitive-word filter: an Aho-Corasick automaton over normalised text (compatibility
// decomposition (NFKD, equivalent to NFKC for matching) with case folding, zero-width, format
// characters and combining marks removed, separators inside a word skipped), so
// "ＦＵＣＫ", "f.u.c.k" and "敏 感 词" match; words in Latin script match only whole words.
// Text without a match is returned byte-identical (action kAllow).
//
// Thread-safety: Check is safe from any thread and never blocks on Reload (the automaton is
// swapped atomically).
class WordFilter : public ContentFilter {
 public:
  // Rebuilds the automaton from the words file (WordFilterOptions::words_file). On failure the
  // old list stays in force.
  virtual Status Reload() = 0;
  virtual size_t word_count() const = 0;
};

struct WordFilterOptions {
  std::string words_file;  // UTF-8, one word a line; blank lines and lines starting '#' skipped
  FilterMode mode = FilterMode::kReject;
};

// Loads the words file. 400 when it cannot be read or holds invalid UTF-8 (naming the line).
Result<std::shared_ptr<WordFilter>> OpenWordFilter(WordFilterOptions options);
// A filter over a fixed list (Reload is then a no-op).
Result<std::shared_ptr<WordFilter>> NewWordFilter(const std::vector<std::string>& words,
                                                  FilterMode mode);

}  // namespace im

#endif  // IM_CONTENT_FILTER_H_
