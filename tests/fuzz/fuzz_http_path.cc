// The REST front's URL decoding. Percent-decoding agrees with a plain reading of RFC 3986 (and
// '+' as a space in queries); a path splits into the decoded non-empty segments; any path or
// query either decodes or is a 400; and what decodes survives a round trip: percent-encoding the
// decoded values and decoding again gives them back.
#include <fuzzer/FuzzedDataProvider.h>

#include <cctype>
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

// RFC 3986 percent-decoding, spelled out: '%' and two hex digits is that byte.
bool Reference(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i] == '+' && plus_is_space ? ' ' : in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return true;
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
    std::string decoded, expected;
    const bool ok = im::internal::PercentDecode(target, plus_is_space, &decoded);
    if (ok != Reference(target, plus_is_space, &expected) || (ok && decoded != expected)) abort();
    if (ok) {
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
  std::vector<std::string> expected_parts;
  bool expected_ok = true;
  for (size_t begin = 0, end; begin < target.size() && expected_ok; begin = end + 1) {
    end = target.find('/', begin);
    if (end == std::string::npos) end = target.size();
    if (end == begin) continue;
    expected_parts.emplace_back();
    expected_ok = Reference(target.substr(begin, end - begin), false, &expected_parts.back());
  }
  if (path_status.ok() != expected_ok || (expected_ok && parts != expected_parts)) abort();
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
