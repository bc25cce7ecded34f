// Test support for the conformance runner (tests/conformance/main.cc): the LevelDB backends it
// adds open a fresh directory, and reopen the one they wrote.
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

// The directory of the last LevelDB backend a case opened, kept for reopening it until the next
// open replaces it (it goes when the backends opened in it are gone).
inline std::shared_ptr<TempDir>& LastLevelDbDir() {
  static std::shared_ptr<TempDir> dir;
  return dir;
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_BACKENDS_H_
