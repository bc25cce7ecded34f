// Test support: one HTTP/1.1 request to the REST API on 127.0.0.1, its status and JSON body.
#ifndef IM_TESTS_SUPPORT_HTTP_H_
#define IM_TESTS_SUPPORT_HTTP_H_

#include <cstdint>
#include <string>

#include <rapidjson/document.h>

#include "support/test_server.h"

namespace im::test {

struct HttpResult {
  int status = 0;  // 0 when the server sent nothing (refused, reset, crashed)
  std::string text;
  rapidjson::Document body;
  std::string Str(const char* key) const {
    return body.IsObject() && body.HasMember(key) && body[key].IsString() ? body[key].GetString()
                                                                          : "";
  }
};

// One request on a fresh connection (Connection: close); reads to EOF. A POST always carries a
// Content-Length (0 for an empty body).
inline HttpResult Http(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "", const std::string& bearer = "") {
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!bearer.empty()) req += "Authorization: Bearer " + bearer + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  const std::string resp = HttpRoundTrip(port, req);
  HttpResult r;
  if (resp.size() > 12) r.status = std::stoi(resp.substr(9, 3));
  const auto split = resp.find("\r\n\r\n");
  r.text = split == std::string::npos ? "" : resp.substr(split + 4);
  r.body.Parse(r.text.c_str(), r.text.size());
  return r;
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_HTTP_H_
