#include "im/status.h"

#include <string>

namespace im {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kBadRequest: return "bad_request";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kForbidden: return "forbidden";
    case Code::kNotFound: return "not_found";
    case Code::kMethodNotAllowed: return "method_not_allowed";
    case Code::kConflict: return "conflict";
    case Code::kTooLarge: return "too_large";
    case Code::kContentRejected: return "content_rejected";
    case Code::kRateLimited: return "rate_limited";
    case Code::kInternal: return "internal";
    case Code::kUnknownCommand: return "unknown_command";
    case Code::kUnavailable: return "unavailable";
  }
  return "internal";
}

Status::Status(Code code, std::string error, std::string message) {
  if (code == Code::kOk) return;
  if (error.empty()) error = std::string(CodeName(code));
  rep_ = std::make_unique<Rep>(Rep{code, std::move(error), std::move(message)});
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = std::to_string(static_cast<int>(rep_->code)) + " " + rep_->error;
  if (!rep_->message.empty()) s += ": " + rep_->message;
  return s;
}

}  // namespace im
