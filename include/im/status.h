// Status: the outcome of an operation that can fail. Cheap when OK (a null pointer), as in
// LevelDB. Codes are the wire protocol's codes, so a Status crosses from a backend to a
// client response without translation.
//
// Thread-safety: a Status is a value; distinct objects may be used from distinct threads.
#ifndef IM_STATUS_H_
#define IM_STATUS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace im {

// The protocol's result codes (docs/protocol.md). The numeric values travel on the wire.
enum class Code : int {
  kOk = 0,
  kBadRequest = 400,
  kUnauthenticated = 401,
  kForbidden = 403,
  kNotFound = 404,
  kMethodNotAllowed = 405,  // HTTP endpoints only
  kConflict = 409,
  kTooLarge = 413,
  kContentRejected = 422,
  kRateLimited = 429,
  kInternal = 500,
  kUnknownCommand = 501,
  kUnavailable = 503,
};

// The stable snake_case name of a code ("bad_request", "not_found", ...).
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(const Status& other) { *this = other; }
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  // `error` is the stable snake_case name sent as the protocol's `error` field; empty means
  // CodeName(code). `message` is for people.
  static Status Error(Code code, std::string error, std::string message = {}) {
    return Status(code, std::move(error), std::move(message));
  }
  static Status BadRequest(std::string message) {
    return Status(Code::kBadRequest, "bad_request", std::move(message));
  }
  static Status NotFound(std::string message) {
    return Status(Code::kNotFound, "not_found", std::move(message));
  }
  static Status Forbidden(std::string error, std::string message) {
    return Status(Code::kForbidden, std::move(error), std::move(message));
  }
  static Status Conflict(std::string message) {
    return Status(Code::kConflict, "conflict", std::move(message));
  }
  static Status Internal(std::string message) {
    return Status(Code::kInternal, "internal", std::move(message));
  }
  static Status Unavailable(std::string message) {
    return Status(Code::kUnavailable, "unavailable", std::move(message));
  }
  static Status Unauthenticated(std::string error, std::string message) {
    return Status(Code::kUnauthenticated, std::move(error), std::move(message));
  }
  // 429 rate_limited: try again in `retry_after_ms` (sent to the client as `retry_after_ms`).
  static Status RateLimited(std::string message, int64_t retry_after_ms) {
    return Status(Code::kRateLimited, "rate_limited", std::move(message))
        .WithRetryAfter(retry_after_ms);
  }

  // The same error with a hint for the client: retry after this many milliseconds. Ignored on
  // an OK status; a value below 1 clears the hint.
  Status WithRetryAfter(int64_t retry_after_ms) && {
    if (rep_) rep_->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 0;
    return std::move(*this);
  }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The snake_case error name; "ok" when ok().
  std::string_view error() const { return rep_ ? std::string_view(rep_->error) : "ok"; }
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }
  // Milliseconds the client should wait before trying again; 0 = no hint.
  int64_t retry_after_ms() const { return rep_ ? rep_->retry_after_ms : 0; }
  // "403 not_member: the sender is not a member", or "ok".
  std::string ToString() const;

 private:
  struct Rep {
    Code code;
    std::string error;
    std::string message;
    int64_t retry_after_ms = 0;
  };
  Status(Code code, std::string error, std::string message);
  std::unique_ptr<Rep> rep_;
};

}  // namespace im

#endif  // IM_STATUS_H_
