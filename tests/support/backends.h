// Test support for the conformance suites: each runs the same cases against every backend of
// one interface (memory, LevelDB), and reopens a LevelDB backend on the directory it wrote.
#ifndef IM_TESTS_SUPPORT_BACKENDS_H_
#define IM_TESTS_SUPPORT_BACKENDS_H_

#include <doctest/doctest.h>

#include <memory>
#include <utility>

#include "im/status.h"
#include "support/temp_dir.h"

namespace im::test {

// `opened` (REQUIREd to be ok) as a pointer that also holds `dir`: the backend is closed
// before the directory may be removed.
template <typename T>
std::shared_ptr<T> HoldingDir(Result<std::shared_ptr<T>> opened, std::shared_ptr<TempDir> dir) {
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  std::shared_ptr<T> backend = std::move(opened).value();
  T* raw = backend.get();
  return std::shared_ptr<T>(raw, [backend, dir](T*) mutable {
    backend.reset();
    dir.reset();
  });
}

// The directory of the last LevelDB backend a case opened, kept for reopening it until the
// case ends (ForEachBackend forgets it).
inline std::shared_ptr<TempDir>& LastLevelDbDir() {
  static std::shared_ptr<TempDir> dir;
  return dir;
}

// Runs `body` once per entry of `backends` (each with a `name`), each in its own SUBCASE so a
// failure names the backend. The last LevelDB directory goes when the body ends (and the
// backends opened in it with it), even when it fails.
template <typename Backends, typename Body>
void ForEachBackend(const Backends& backends, Body body) {
  struct ForgetDir {
    ~ForgetDir() { LastLevelDbDir().reset(); }
  };
  for (const auto& backend : backends) {
    SUBCASE(backend.name) {
      ForgetDir forget;
      body(backend);
    }
  }
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_BACKENDS_H_
