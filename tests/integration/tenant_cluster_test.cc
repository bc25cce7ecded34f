// Tenants in a cluster: two imd nodes on one Redis share one tenant registry. A suspension
// written through one node kicks the tenant's sessions on the other within tenant_refresh_ms
// and a sweep, and that node refuses the tenant's logins too.
#if IM_WITH_REDIS

#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "im/auth.h"
#include "support/http.h"
#include "support/imd_process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

#ifdef IMD_PATH
namespace {

constexpr char kAcmeHex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr char kOperatorKey[] = "operator-key-0123456789";

uint16_t PortOf(const std::string& listen) {
  return static_cast<uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1)));
}

std::string AcmeToken(const std::string& user) {
  std::string raw;
  for (size_t i = 0; i + 1 < sizeof(kAcmeHex) - 1; i += 2) {
    raw.push_back(static_cast<char>(std::stoi(std::string(kAcmeHex + i, 2), nullptr, 16)));
  }
  auto token = im::SignHs256Token(*im::NewStaticKeyStore({{"acme", raw}}),
                                  im::UserKey{"acme", user}, 3600, im::SystemClock()->NowMs());
  REQUIRE(token.ok());
  return *token;
}

}  // namespace

TEST_CASE("tenant cluster: a suspension written on one node kicks the tenant on another") {
  im::test::RedisServer redis;
  im::test::TempDir dir;
  const std::string url = redis.url();
  std::vector<im::test::ImdProcess> nodes;
  for (int n = 0; n < 2; ++n) {
    const std::string data = dir.path() + "/node" + std::to_string(n);
    std::filesystem::create_directories(data);
    auto args = im::test::WriteImdConfig(
        data, "[server]\nnode_number = " + std::to_string(n) +
                  "\nsweep_interval_ms = 100\ntenant_refresh_ms = 200\n[storage]\ninbox = \"" +
                  url + "\"\ngroups = \"" + url + "\"\nusers = \"" + url +
                  "\"\nsessions = \"" + url + "\"\n[cluster]\nnode_id = \"n" +
                  std::to_string(n) + "\"\n[web]\noperator_key = \"" + kOperatorKey +
                  "\"\n[keys]\nacme = \"" + kAcmeHex +
                  "\"\n[tenants.acme]\nmax_devices_per_user = 4\n");
    nodes.push_back(im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args));
  }
  // Seeded once, in Redis: both nodes read the same record.
  auto seeded = im::test::Http(PortOf(nodes[1].http_listen), "GET", "/v1/admin/tenants/acme", "",
                               kOperatorKey);
  REQUIRE(seeded.status == 200);
  CHECK(seeded.body["quotas"]["max_devices_per_user"] == 4);

  im::test::RawClient on_node1("tcp://" + nodes[1].tcp_listen);
  REQUIRE(on_node1.Login(AcmeToken("alice")) == 0);
  auto put = im::test::Http(PortOf(nodes[0].http_listen), "PUT", "/v1/admin/tenants/acme",
                            R"({"status":"suspended"})", kOperatorKey);
  REQUIRE(put.status == 200);
  rapidjson::Document push;
  REQUIRE(on_node1.WaitPush("session.kicked", &push, 20000));
  CHECK(im::test::Str(push["body"], "reason") == "tenant_suspended");
  CHECK(on_node1.WaitClosed(20000) == im::close_code::kKicked);
  im::test::RawClient again("tcp://" + nodes[1].tcp_listen);
  rapidjson::Document doc;
  REQUIRE(again.Call(1, "login", R"({"token":")" + AcmeToken("bob") + R"("})", &doc));
  CHECK(im::test::ErrorOf(doc) == "tenant_suspended");
  for (auto& node : nodes) {
    node.process->Signal(SIGTERM);
    CHECK(node.process->Wait(20000) == 0);
  }
}
#endif  // IMD_PATH
#endif  // IM_WITH_REDIS
