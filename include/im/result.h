// Result<T>: a value or the Status that explains why there is none.
//
// Thread-safety: a value type; distinct objects may be used from distinct threads.
#ifndef IM_RESULT_H_
#define IM_RESULT_H_

#include <cassert>
#include <optional>
#include <utility>

#include "im/status.h"

namespace im {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK status carries no value");
    if (status_.ok()) status_ = Status::Internal("Result built from OK status without value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace im

#endif  // IM_RESULT_H_
