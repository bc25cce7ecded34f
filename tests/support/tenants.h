// Test support for the tenant tests: the operator key, the admin keys of tenants "default" and
// "acme", a PUT to the tenant registry, a logged-in raw client of a tenant's user, and a command's
// answer code. Header only, for doctest cases alone (PutTenant and LoggedIn REQUIRE success).
#ifndef IM_TESTS_SUPPORT_TENANTS_H_
#define IM_TESTS_SUPPORT_TENANTS_H_

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>

#include "im/options.h"
#include "support/http.h"
#include "support/test_server.h"

namespace im::test {

inline constexpr char kOperatorKey[] = "operator-key-0123456789";
inline constexpr char kAcmeAdminKey[] = "admin-key-of-tenant-acme";

// ServerOptions with the operator key and the admin keys of tenants default and acme.
inline ServerOptions TenantOptions() {
  ServerOptions o;
  o.operator_key = kOperatorKey;
  o.admin_keys = {{"default", TestServer::kAdminKey}, {"acme", kAcmeAdminKey}};
  return o;
}

// PUT /v1/admin/tenants/<name> with the operator key; REQUIREs 200.
inline void PutTenant(TestServer& server, const std::string& name, const std::string& body) {
  auto r = Http(server.server().http_port(), "PUT", "/v1/admin/tenants/" + name, body,
                kOperatorKey);
  REQUIRE_MESSAGE(r.status == 200, r.text);
}

// A logged-in raw client of `user` in `tenant` (REQUIREs success).
inline std::unique_ptr<RawClient> LoggedIn(TestServer& server, const std::string& user,
                                           const std::string& tenant,
                                           const std::string& device = "d") {
  auto c = std::make_unique<RawClient>(server.TcpUrl());
  REQUIRE(c->connected());
  REQUIRE(c->Login(server.Token(user, tenant), device) == 0);
  return c;
}

// Sends {"id":id,"cmd":cmd,"body":body} and waits up to 10 s: 0 when the answer has no code
// (success), else its code; -1 when no answer came. `reply`, when given, gets the answer.
inline int CallCode(RawClient& c, uint32_t id, const std::string& cmd, const std::string& body,
                    rapidjson::Document* reply = nullptr) {
  rapidjson::Document doc;
  if (!c.Call(id, cmd, body, &doc, 10000)) return -1;
  const int code = CodeOf(doc);
  if (reply != nullptr) reply->CopyFrom(doc, reply->GetAllocator());
  return code < 0 ? 0 : code;
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_TENANTS_H_
