// Internals of the conformance library: the backends added for each interface, and the loop
// that runs a case's body once per backend.
#ifndef IM_TESTS_CONFORMANCE_SUITES_SUITE_H_
#define IM_TESTS_CONFORMANCE_SUITES_SUITE_H_

#include <doctest/doctest.h>

#include <vector>

#include "im/conformance.h"

namespace im::conformance::internal {

// Each is defined in its suite's file, so that linking the runner (which refers to all four)
// links every suite's cases from the static library.
std::vector<SessionStoreBackend>& SessionStoreBackends();
std::vector<OfflineQueueBackend>& OfflineQueueBackends();
std::vector<GroupServiceBackend>& GroupServiceBackends();
std::vector<UserStoreBackend>& UserStoreBackends();

// Runs `body` once per backend, each in its own SUBCASE so a failure names the backend.
template <typename Backend, typename Body>
void ForEachBackend(const std::vector<Backend>& backends, Body body) {
  for (const Backend& backend : backends) {
    SUBCASE(backend.name.c_str()) { body(backend); }
  }
}

}  // namespace im::conformance::internal

#endif  // IM_TESTS_CONFORMANCE_SUITES_SUITE_H_
