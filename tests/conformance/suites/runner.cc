// The conformance library's entry points and its doctest runner.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <utility>

#include "im/conformance.h"
#include "suites/suite.h"

namespace im::conformance {
namespace {

// Runs the registered cases with doctest's command-line options. `only` names the interface
// whose cases run (nullptr: every interface that has a backend, and the binary's own cases).
int RunCases(const char* only, int argc, const char* const* argv) {
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  if (only != nullptr) {
    context.addFilter("test-case", (std::string(only) + ": *").c_str());
  } else {
    const std::pair<const char*, bool> interfaces[] = {
        {"SessionStore", !internal::Backends<SessionStoreBackend>().empty()},
        {"OfflineQueue", !internal::Backends<OfflineQueueBackend>().empty()},
        {"GroupService", !internal::Backends<GroupServiceBackend>().empty()},
        {"UserStore", !internal::Backends<UserStoreBackend>().empty()},
    };
    bool any = false;
    for (const auto& [name, has_backend] : interfaces) {
      if (!has_backend) context.addFilter("test-case-exclude", (std::string(name) + ": *").c_str());
      any = any || has_backend;
    }
    if (!any) {
      std::fprintf(stderr, "im::conformance::Run: no backend added (AddBackend)\n");
      return 2;
    }
  }
  return context.run();
}

}  // namespace

void AddBackend(SessionStoreBackend backend) {
  internal::LinkSessionStoreSuite();
  internal::Backends<SessionStoreBackend>().push_back(std::move(backend));
}
void AddBackend(OfflineQueueBackend backend) {
  internal::LinkOfflineQueueSuite();
  internal::Backends<OfflineQueueBackend>().push_back(std::move(backend));
}
void AddBackend(GroupServiceBackend backend) {
  internal::LinkGroupServiceSuite();
  internal::Backends<GroupServiceBackend>().push_back(std::move(backend));
}
void AddBackend(UserStoreBackend backend) {
  internal::LinkUserStoreSuite();
  internal::Backends<UserStoreBackend>().push_back(std::move(backend));
}

int RunSessionStoreSuite(SessionStoreBackend backend, int argc, const char* const* argv) {
  AddBackend(std::move(backend));
  return RunCases("SessionStore", argc, argv);
}
int RunOfflineQueueSuite(OfflineQueueBackend backend, int argc, const char* const* argv) {
  AddBackend(std::move(backend));
  return RunCases("OfflineQueue", argc, argv);
}
int RunGroupServiceSuite(GroupServiceBackend backend, int argc, const char* const* argv) {
  AddBackend(std::move(backend));
  return RunCases("GroupService", argc, argv);
}
int RunUserStoreSuite(UserStoreBackend backend, int argc, const char* const* argv) {
  AddBackend(std::move(backend));
  return RunCases("UserStore", argc, argv);
}
int Run(int argc, const char* const* argv) { return RunCases(nullptr, argc, argv); }

}  // namespace im::conformance
