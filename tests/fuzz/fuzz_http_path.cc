// The REST front's URL decoding. Any path or query either decodes or is a 400; what decodes
// survives a round trip: percent-encoding the decoded values and decoding again gives them back.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/http_path.h"
#include "im/status.h"

namespace {

// Every byte as %XX: the decoders must accept it whatever the byte.
std::string EncodeAll(std::string_view in) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

void CheckStatus(const im::Status& s) {
  if (!s.ok() && (s.code() != im::Code::kBadRequest || s.error() != "bad_request")) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string name = in.ConsumeRandomLengthString(32);
  const std::string target = in.ConsumeRemainingBytesAsString();

  for (bool plus_is_space : {false, true}) {
    std::string decoded;
    if (im::internal::PercentDecode(target, plus_is_space, &decoded)) {
      if (decoded.size() > target.size()) abort();
      std::string again;
      if (!im::internal::PercentDecode(EncodeAll(decoded), plus_is_space, &again) ||
          again != decoded) {
        abort();
      }
    }
  }

  std::vector<std::string> parts;
  const im::Status path_status = im::internal::PathParts(target, &parts);
  CheckStatus(path_status);
  if (path_status.ok()) {
    std::string path;
    for (const std::string& part : parts) {
      if (part.empty()) abort();
      path += '/' + EncodeAll(part);
    }
    std::vector<std::string> again;
    if (!im::internal::PathParts(path, &again).ok() || again != parts) abort();
  }

  std::string value;
  const im::Status query_status = im::internal::QueryParam(target, name, &value);
  CheckStatus(query_status);
  if (query_status.ok()) {
    // The same value first in a query of our own making, behind a decoy parameter.
    const std::string own = "/v1/x?" + EncodeAll(name) + "x=1&" + EncodeAll(name) + "=" +
                            EncodeAll(value) + "&" + EncodeAll(name) + "=second";
    std::string again;
    if (!im::internal::QueryParam(own, name, &again).ok() || again != value) abort();
  }
  return 0;
}
