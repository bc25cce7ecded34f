// imd's configuration parser: any text is either a configuration or a 400 naming the problem;
// never a crash, an exception or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config.h"
#include "im/status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imd::Config config;
  const im::Status s = imd::LoadConfigText(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml", &config);
  if (!s.ok() && (s.code() != im::Code::kBadRequest || s.message().empty())) abort();
  return 0;
}
