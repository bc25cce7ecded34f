// Key rotation: a tenant with several signing keys, each named by a kid that tokens carry in
// their header. The old key keeps working until the config drops it; then its tokens get 401.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <string>

#include "im/auth.h"
#include "im/client.h"
#include "support/child_process.h"
#include "support/http.h"
#include "support/imd_process.h"

#ifdef IMD_PATH
namespace {

constexpr char kOldHex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr char kNewHex[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
constexpr char kDefaultHex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string Raw(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// A token of acme's `user` signed with `key` under `kid` ("" = a token without kid).
std::string AcmeToken(const std::string& user, const std::string& kid, const std::string& key) {
  auto keys = im::NewRotatingKeyStore({{"acme", {{kid, key}}}});
  REQUIRE(keys.ok());
  auto token = im::SignHs256Token(**keys, im::UserKey{"acme", user}, 3600,
                                  im::SystemClock()->NowMs());
  REQUIRE(token.ok());
  return *token;
}

// The login's answer: "" when it passed, else the error name.
std::string LoginError(const std::string& url, const std::string& token) {
  im::ClientOptions o;
  o.url = url;
  im::Client c(o);
  REQUIRE(c.Connect().ok());
  auto r = c.Login(token);
  if (r.ok()) return "";
  const std::string error(r.status().error());
  // invalid_token is 401, tenant_suspended 403 (docs/protocol.md, section 4).
  CHECK(static_cast<int>(r.status().code()) == (error == "tenant_suspended" ? 403 : 401));
  return error;
}

// Whether imd, given `toml` as its config, refuses to start (exit status 1).
bool RefusedAtStart(const std::string& data, const std::string& toml) {
  auto args = im::test::WriteImdConfig(data, toml);
  std::vector<std::string> argv = {IMD_PATH, "--data", data, "--http", "127.0.0.1:0",
                                   "--tcp", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  im::test::ChildProcess imd(argv);
  return imd.Wait(10000) == 1;
}

}  // namespace

TEST_CASE("tenant keys: a kid picks the key - the old key works until removed, then 401") {
  const std::string data = im::test::MakeTempDir();
  const std::string both =
      std::string("[keys]\ndefault = \"") + kDefaultHex + "\"\nacme = [{kid = \"k2\", key = \"" +
      kNewHex + "\"}, {kid = \"k1\", key = \"" + kOldHex + "\"}]\n";
  auto args = im::test::WriteImdConfig(data, both);
  std::string old_kid = AcmeToken("alice", "k1", Raw(kOldHex));
  std::string old_no_kid = AcmeToken("bob", "", Raw(kOldHex));
  std::string unknown_kid = AcmeToken("carol", "k9", Raw(kOldHex));
  std::string forged = AcmeToken("dave", "k1", Raw(kDefaultHex));
  std::string wrong_kid = AcmeToken("erin", "k2", Raw(kOldHex));  // k1's key, named k2
  std::string new_kid = AcmeToken("frank", "k2", Raw(kNewHex));
  std::string tcp_listen;
  {
    auto imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
    tcp_listen = imd.tcp_listen;
    CHECK(LoginError(imd.tcp_url, old_kid) == "");
    CHECK(LoginError(imd.tcp_url, old_no_kid) == "");
    CHECK(LoginError(imd.tcp_url, new_kid) == "");
    CHECK(LoginError(imd.tcp_url, unknown_kid) == "invalid_token");
    CHECK(LoginError(imd.tcp_url, forged) == "invalid_token");
    CHECK(LoginError(imd.tcp_url, wrong_kid) == "invalid_token");
    // `imd token` signs with the first key and names it.
    int rc = 0;
    std::string minted = im::test::RunAndCapture(
        {IMD_PATH, "token", "--user", "gina", "--tenant", "acme", "--data", data, "--config",
         data + "/imd.toml"}, &rc);
    REQUIRE(rc == 0);
    while (!minted.empty() && minted.back() == '\n') minted.pop_back();
    CHECK(LoginError(imd.tcp_url, minted) == "");
    // The single-key form of [keys] works as before.
    auto legacy = im::SignHs256Token(*im::NewStaticKeyStore({{"default", Raw(kDefaultHex)}}),
                                     im::UserKey{"default", "harry"}, 3600,
                                     im::SystemClock()->NowMs());
    REQUIRE(legacy.ok());
    CHECK(legacy->find('.') != std::string::npos);
    CHECK(LoginError(imd.tcp_url, *legacy) == "");
    imd.process->Signal(SIGTERM);
    CHECK(imd.process->Wait(10000) == 0);
  }
  // k1 retired: its tokens are refused, with or without kid; k2's still pass.
  im::test::WriteImdConfig(data, std::string("[keys]\ndefault = \"") + kDefaultHex +
                                     "\"\nacme = [{kid = \"k2\", key = \"" + kNewHex + "\"}]\n");
  {
    auto imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
    CHECK(LoginError(imd.tcp_url, old_kid) == "invalid_token");
    CHECK(LoginError(imd.tcp_url, old_no_kid) == "invalid_token");
    CHECK(LoginError(imd.tcp_url, new_kid) == "");
    CHECK(LoginError(imd.tcp_url, forged) == "invalid_token");
    imd.process->Signal(SIGTERM);
    CHECK(imd.process->Wait(10000) == 0);
  }
  std::filesystem::remove_all(data);
}

TEST_CASE("tenant keys: a bad [keys] entry is refused at start with the key named") {
  const std::string data = im::test::MakeTempDir();
  for (const std::string& bad :
       {std::string("[keys]\nacme = [{kid = \"k1\", key = \"abc\"}]\n"),
        std::string("[keys]\nacme = [{key = \"") + kOldHex + "\"}]\n",
        std::string("[keys]\nacme = [{kid = \"k1\", key = \"") + kOldHex +
            "\"}, {kid = \"k1\", key = \"" + kNewHex + "\"}]\n",
        std::string("[keys]\nacme = []\n"), std::string("[keys]\nacme = 5\n"),
        std::string("[keys]\nacme = [{kid = \"k1\", key = \"") + kOldHex + "\", kyd = 1}]\n"}) {
    CHECK_MESSAGE(RefusedAtStart(data, bad), bad);
  }
  std::filesystem::remove_all(data);
}
TEST_CASE("tenant config: [tenants.X] seeds the registry once - a PUT survives restarts") {
  const std::string data = im::test::MakeTempDir();
  const std::string toml =
      std::string("[web]\noperator_key = \"operator-key-0123456789\"\n[keys]\nacme = \"") +
      kOldHex + "\"\n[tenants.acme]\nstatus = \"suspended\"\nmax_devices_per_user = 2\n" +
      "words = [\"zorblax\"]\nmax_groups_per_user = 4\nrest_request_rate = 0.5\n" +
      "rest_request_burst = 9\nretention_s = 3600\nmax_inbox = 100\nlogin_rate = 2.5\n" +
      "login_burst = 4\ncommand_rate = 50\ncommand_burst = 60\nconnection_send_rate = 7\n" +
      "connection_send_burst = 8\nlogin_account_rate = 0.25\nlogin_account_burst = 3\n";
  auto args = im::test::WriteImdConfig(data, toml);
  const std::string token = AcmeToken("alice", "", Raw(kOldHex));
  auto port_of = [](const std::string& listen) {
    return static_cast<uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1)));
  };
  {
    auto imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
    CHECK(LoginError(imd.tcp_url, token) == "tenant_suspended");
    auto got = im::test::Http(port_of(imd.http_listen), "GET", "/v1/admin/tenants/acme", "",
                              "operator-key-0123456789");
    REQUIRE(got.status == 200);
    CHECK(got.Str("status") == "suspended");
    CHECK(got.body["quotas"]["max_devices_per_user"] == 2);
    CHECK(got.body["quotas"]["max_groups_per_user"] == 4);
    CHECK(got.body["quotas"]["rest_request_rate"] == 0.5);
    CHECK(got.body["quotas"]["rest_request_burst"] == 9);
    CHECK(got.body["quotas"]["retention_s"] == 3600);
    CHECK(got.body["quotas"]["max_inbox"] == 100);
    CHECK(got.body["quotas"]["login_rate"] == 2.5);
    CHECK(got.body["quotas"]["login_burst"] == 4);
    CHECK(got.body["quotas"]["command_rate"] == 50);
    CHECK(got.body["quotas"]["command_burst"] == 60);
    CHECK(got.body["quotas"]["connection_send_rate"] == 7);
    CHECK(got.body["quotas"]["connection_send_burst"] == 8);
    CHECK(got.body["quotas"]["login_account_rate"] == 0.25);
    CHECK(got.body["quotas"]["login_account_burst"] == 3);
    // The store's bounds ([storage] defaults here) bound a PUT too.
    auto over = im::test::Http(port_of(imd.http_listen), "PUT", "/v1/admin/tenants/acme",
                               R"({"quotas":{"max_inbox":10001}})", "operator-key-0123456789");
    CHECK(over.status == 400);
    auto put = im::test::Http(port_of(imd.http_listen), "PUT", "/v1/admin/tenants/acme",
                              R"({"status":"active"})", "operator-key-0123456789");
    CHECK(put.status == 200);
    CHECK(LoginError(imd.tcp_url, token) == "");
    imd.process->Signal(SIGTERM);
    CHECK(imd.process->Wait(10000) == 0);
  }
  {
    // The stored record (active) wins over the config's (suspended): the registry is durable.
    auto imd = im::test::StartImd(IMD_PATH, data, "127.0.0.1:0", "127.0.0.1:0", args);
    CHECK(LoginError(imd.tcp_url, token) == "");
    imd.process->Signal(SIGTERM);
    CHECK(imd.process->Wait(10000) == 0);
  }
  for (const std::string& bad :
       {std::string("[tenants.acme]\nstatus = \"paused\"\n"),
        std::string("[tenants.acme]\nmax_sessions = 1\n"),
        std::string("[tenants.acme]\nwords = [1]\n"),
        std::string("[tenants.acme]\nmax_group_members = -1\n"),
        std::string("[tenants.acme]\nretention_s = 604801\n"),
        std::string("[storage]\nmax_inbox = 50\n[tenants.acme]\nmax_inbox = 51\n"),
        std::string("[tenants.acme]\nrest_request_rate = -1\n"),
        std::string("[tenants.acme]\nlogin_rate = -1\n"),
        std::string("[tenants.acme]\ncommand_burst = 1.5\n"),
        std::string("[tenants.acme]\nconnection_send_rate = \"fast\"\n"),
        std::string("[web]\noperator_key = \"short\"\n")}) {
    CHECK_MESSAGE(RefusedAtStart(data, bad), bad);
  }
  std::filesystem::remove_all(data);
}
#endif
