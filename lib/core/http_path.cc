#include "core/http_path.h"

namespace im::internal {

namespace {
const Status kBadPercent =
    Status::BadRequest("malformed percent-encoding ('%' must be followed by two hex digits)");
}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (in.size() - i < 3) return false;
      const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

std::string PercentEncode(std::string_view in) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (const char c : in) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' ||
        b == '.' || b == '_' || b == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

Status PathParts(const std::string& path, std::vector<std::string>* parts) {
  parts->clear();
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) {
      std::string segment;
      if (!PercentDecode(std::string_view(path).substr(i, j - i), false, &segment)) {
        return kBadPercent;
      }
      parts->push_back(std::move(segment));
    }
    i = j + 1;
  }
  return Status::OK();
}

Status QueryParam(const std::string& target, std::string_view name, std::string* value) {
  value->clear();
  size_t q = target.find('?');
  if (q == std::string::npos) return Status::OK();
  std::string_view query = std::string_view(target).substr(q + 1);
  size_t i = 0;
  std::string key;
  while (i <= query.size()) {
    size_t j = query.find('&', i);
    if (j == std::string_view::npos) j = query.size();
    std::string_view kv = query.substr(i, j - i);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) {
      if (!PercentDecode(kv.substr(0, eq), true, &key)) return kBadPercent;
      if (key == name) {
        return PercentDecode(kv.substr(eq + 1), true, value) ? Status::OK() : kBadPercent;
      }
    }
    i = j + 1;
  }
  return Status::OK();
}

}  // namespace im::internal
