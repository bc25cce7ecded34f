// Test support: a fresh directory under /tmp, removed with everything in it on destruction.
#ifndef IM_TESTS_SUPPORT_TEMP_DIR_H_
#define IM_TESTS_SUPPORT_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace im::test {

class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/im-test-XXXXXX";
    if (mkdtemp(path) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = path;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_TEMP_DIR_H_
