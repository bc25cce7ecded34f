// ContentFilter: decides whether a text may be stored and delivered as is.
//
// Thread-safety: implementations are safe from any thread.
#ifndef IM_CONTENT_FILTER_H_
#define IM_CONTENT_FILTER_H_

#include <memory>
#include <string>
#include <string_view>

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

}  // namespace im

#endif  // IM_CONTENT_FILTER_H_
