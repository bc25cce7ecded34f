// The word filter: normaliser, automaton build and scan. Any text normalises exactly when it is
// valid UTF-8; invalid text is refused in both modes; for valid text, reject mode refuses
// exactly when mask mode masks, and a masked text is valid UTF-8, no longer, with a '*' in it.
// The word list is fixed: it comes from the operator's words file, and each build of an
// automaton takes milliseconds (a table over the whole BMP), which would starve the fuzzer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "filter/normalizer.h"
#include "im/content_filter.h"

namespace {

using im::FilterAction;
using im::FilterMode;

std::shared_ptr<im::WordFilter> Fixed(FilterMode mode) {
  const std::vector<std::string> words = {"fuck", "ass", "敏感词", "año", "ｆｏｏ", "straße",
                                          "a.b", "ﷺ", "\xF0\x9F\x98\x80", "x y z"};
  auto filter = im::NewWordFilter(words, mode);
  if (!filter.ok()) abort();
  return *filter;
}

void Check(const im::WordFilter& reject, const im::WordFilter& mask, std::string_view text) {
  std::vector<im::internal::NormChar> normalized;
  const bool valid = im::internal::NormalizeText(text, &normalized);
  const im::FilterDecision r = reject.Check("t", text);
  const im::FilterDecision m = mask.Check("t", text);
  if (!valid) {
    if (r.action != FilterAction::kReject || m.action != FilterAction::kReject ||
        !r.matched.empty() || !m.matched.empty()) {
      abort();
    }
    return;
  }
  if (r.action == FilterAction::kMask || m.action == FilterAction::kReject) abort();
  if ((r.action == FilterAction::kReject) != (m.action == FilterAction::kMask)) abort();
  if (r.action == FilterAction::kReject && r.matched.empty()) abort();
  if (m.action == FilterAction::kAllow && !m.text.empty()) abort();
  if (m.action == FilterAction::kMask) {
    if (m.text.size() > text.size() || m.text.find('*') == std::string::npos ||
        !im::internal::NormalizeText(m.text, &normalized)) {
      abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto reject = Fixed(FilterMode::kReject);
  static const auto mask = Fixed(FilterMode::kMask);
  Check(*reject, *mask, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
