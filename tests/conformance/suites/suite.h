// Internals of the conformance library: the backends added for each interface, and the loop
// that runs a case's body once per backend.
#ifndef IM_TESTS_CONFORMANCE_SUITES_SUITE_H_
#define IM_TESTS_CONFORMANCE_SUITES_SUITE_H_

#include <doctest/doctest.h>
#include <sodium.h>

#include <string_view>
#include <utility>
#include <vector>

#include "im/conformance.h"
#include "im/result.h"
#include "im/status.h"

namespace im::conformance::internal {

// The backends added for one interface (a list per backend description type).
template <typename Backend>
std::vector<Backend>& Backends() {
  static std::vector<Backend> backends;
  return backends;
}

// Each is defined (empty) in its suite's file and called by the runner, so that linking the
// runner links every suite's cases from the static library.
void LinkSessionStoreSuite();
void LinkOfflineQueueSuite();
void LinkGroupServiceSuite();
void LinkUserStoreSuite();

// Runs `body` once per added backend, each in its own SUBCASE so a failure names the backend.
template <typename Backend, typename Body>
void ForEachBackend(Body body) {
  for (const Backend& backend : Backends<Backend>()) {
    SUBCASE(backend.name.c_str()) { body(backend); }
  }
}

// libsodium's minimum cost: tests need correct hashes, not slow ones.
inline PasswordHashOptions FastHash() {
  PasswordHashOptions options;
  options.ops_limit = crypto_pwhash_OPSLIMIT_MIN;
  options.mem_limit = crypto_pwhash_MEMLIMIT_MIN;
  return options;
}

// The value of a call that must succeed.
template <typename T>
T Must(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

inline void MustOk(const Status& s) { REQUIRE_MESSAGE(s.ok(), s.ToString()); }

inline void CheckError(const Status& s, Code code, std::string_view error) {
  CHECK_MESSAGE(s.code() == code, s.ToString());
  CHECK(s.error() == error);
}

template <typename T>
void CheckError(const Result<T>& r, Code code, std::string_view error) {
  REQUIRE_FALSE(r.ok());
  CheckError(r.status(), code, error);
}

}  // namespace im::conformance::internal

#endif  // IM_TESTS_CONFORMANCE_SUITES_SUITE_H_
