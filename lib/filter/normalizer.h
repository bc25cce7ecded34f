// Text normalisation for the sensitive-word filter, one code point at a time.
//
// Matching works on NFKD + case folding (utf8proc) rather than NFKC: both define the same
// equivalence classes, and NFKD needs no composition step, so each original code point maps to
// its normalised code points on its own. That keeps a map from every normalised code point back
// to the original character it came from, which masking needs. On top of NFKD:
//   - default-ignorable code points (zero-width space/joiners, soft hyphen, variation
//     selectors, Hangul fillers) and format characters (Cf) vanish;
//   - combining marks (Mn, Me) vanish, so an accent cannot split a word ("fu\u0301ck") and
//     "é" matches "e". The price: a listed "ano" also matches "año";
//   - spaces, punctuation, symbols (emoji included) and control characters become separators:
//     skipped inside a word, but they end a word for the whole-word rule.
//
// Thread-safety: free functions over immutable data; safe from any thread.
#ifndef IM_FILTER_NORMALIZER_H_
#define IM_FILTER_NORMALIZER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/utf8.h"
#include <vector>

namespace im {
namespace internal {

// One normalised code point.
struct NormChar {
  uint32_t cp = 0;
  bool separator = false;  // space, punctuation, symbol or control: skipped inside a word
  bool word = false;       // a Latin letter or a digit: subject to the whole-word rule
};

// The most normalised code points one original code point yields (U+FDFA yields 18).
inline constexpr size_t kMaxExpansion = 32;

// Normalises one original code point into out[0..n) and returns n (0 when it vanishes).
size_t NormalizeCodePoint(uint32_t cp, NormChar out[kMaxExpansion]);

// True for combining marks (Mn, Me): masking absorbs them into the character before them, so
// a masked "ú" written as "u\u0301" becomes one '*'.
bool IsCombiningMark(uint32_t cp);

// True for letters of the Latin script and decimal digits, after normalisation. Only these get
// the whole-word rule; Han, kana, Hangul and every other script match anywhere, since most of
// them do not put spaces between words.
bool IsWordChar(uint32_t cp);


// Normalises a whole word (the words list goes through the same steps as the text). Returns
// false when `word` is not valid UTF-8.
bool NormalizeText(std::string_view word, std::vector<NormChar>* out);

}  // namespace internal
}  // namespace im

#endif  // IM_FILTER_NORMALIZER_H_
