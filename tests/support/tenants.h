// Test support for the tenant tests: the operator key, the admin keys of tenants "default" and
// "acme", a PUT to the tenant registry, and a logged-in raw client of a tenant's user. Header
// only: every function REQUIREs success, so it is for doctest cases alone.
#ifndef IM_TESTS_SUPPORT_TENANTS_H_
#define IM_TESTS_SUPPORT_TENANTS_H_

#include <doctest/doctest.h>

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

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_TENANTS_H_
