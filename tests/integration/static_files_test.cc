// The static directory on the HTTP port (ServerOptions::static_dir, imd `[http] static_dir`):
// files are served with their content type, traversal and symlink escapes are refused, there is
// no directory listing, and the server's own paths are never shadowed by a file.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/http.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

using im::test::Http;
using im::test::HttpRoundTrip;
using im::test::TempDir;
using im::test::TestServer;

namespace {

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string Header(const std::string& response, const std::string& name) {
  const std::string key = "\r\n" + name + ": ";
  const auto at = response.find(key);
  if (at == std::string::npos) return "";
  const auto end = response.find("\r\n", at + key.size());
  return response.substr(at + key.size(), end - at - key.size());
}

std::string Get(uint16_t port, const std::string& target, const std::string& method = "GET") {
  return HttpRoundTrip(
      port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

}  // namespace

TEST_CASE("static files: served with their type - index.html for a directory - no listing") {
  TempDir dir;
  Write(dir.path() + "/site/index.html", "<h1>chat</h1>");
  Write(dir.path() + "/site/app/main.js", "export const x = 1;");
  Write(dir.path() + "/site/app/style.css", "body{}");
  Write(dir.path() + "/site/empty/readme.txt", "no index here");
  Write(dir.path() + "/site/.env", "secret");
  im::ServerOptions o;
  o.static_dir = dir.path() + "/site";
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();

  std::string r = Get(port, "/");
  CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(Header(r, "Content-Type") == "text/html; charset=utf-8");
  CHECK(r.substr(r.find("\r\n\r\n") + 4) == "<h1>chat</h1>");
  r = Get(port, "/app/main.js?v=3");
  CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(Header(r, "Content-Type") == "text/javascript; charset=utf-8");
  CHECK(r.substr(r.find("\r\n\r\n") + 4) == "export const x = 1;");
  CHECK(Header(Get(port, "/app/style.css"), "Content-Type") == "text/css; charset=utf-8");
  // Percent-decoded like every path of the HTTP port.
  CHECK(Get(port, "/app/%6Dain.js").rfind("HTTP/1.1 200", 0) == 0);
  // HEAD: the headers without the body.
  r = Get(port, "/index.html", "HEAD");
  CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(r.find("<h1>") == std::string::npos);

  // A directory without index.html is not listed; neither is a missing file or a dot file.
  CHECK(Http(port, "GET", "/empty/").status == 404);
  CHECK(Http(port, "GET", "/empty").status == 404);
  CHECK(Http(port, "GET", "/nope.html").status == 404);
  CHECK(Http(port, "GET", "/.env").status == 404);
  // Only GET and HEAD: other methods get the API's answer for an unknown path.
  CHECK(Http(port, "POST", "/index.html", "{}").status == 404);
}

TEST_CASE("static files: traversal and symlink escapes are refused") {
  TempDir dir;
  Write(dir.path() + "/secret.txt", "outside");
  Write(dir.path() + "/site/index.html", "inside");
  Write(dir.path() + "/site/sub/page.html", "page");
  REQUIRE(symlink((dir.path() + "/secret.txt").c_str(), (dir.path() + "/site/link.txt").c_str()) ==
          0);
  REQUIRE(symlink((dir.path() + "/site/sub/page.html").c_str(),
                  (dir.path() + "/site/inner.html").c_str()) == 0);
  im::ServerOptions o;
  o.static_dir = dir.path() + "/site";
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();

  for (const char* target :
       {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
        "/sub/%2E%2E/%2E%2E/secret.txt", "/..%2Fsecret.txt", "/sub%2F..%2F..%2Fsecret.txt",
        "/%5C..%5Csecret.txt", "/index.html%00.txt", "/./index.html"}) {
    CAPTURE(target);
    const auto r = Http(port, "GET", target);
    CHECK((r.status == 400 || r.status == 404));
    CHECK(r.text.find("outside") == std::string::npos);
  }
  CHECK(Http(port, "GET", "/..%2Fsecret.txt").Str("error") == "bad_request");
  // A ".." segment is refused as such, even one that would stay inside the directory.
  CHECK(Http(port, "GET", "/sub/%2E%2E/index.html").status == 400);
  // A symlink leading out of the directory is not followed; one that stays inside is.
  CHECK(Http(port, "GET", "/link.txt").status == 404);
  CHECK(Http(port, "GET", "/inner.html").text == "page");
}

TEST_CASE("static files: the server's own paths are never shadowed by a file") {
  TempDir dir;
  for (const char* name : {"/healthz", "/readyz", "/metrics", "/ws", "/v1/users/alice"}) {
    Write(dir.path() + name, "shadow");
  }
  im::ServerOptions o;
  o.static_dir = dir.path();
  TestServer ts(o);
  const uint16_t port = ts.server().http_port();
  CHECK(Http(port, "GET", "/healthz").Str("status") == "ok");
  CHECK(Http(port, "GET", "/readyz").Str("status") == "ready");
  CHECK(Get(port, "/metrics").find("# TYPE im_") != std::string::npos);
  CHECK(Http(port, "GET", "/v1/users/alice").status == 401);
  CHECK(Http(port, "GET", "/ws").text.find("shadow") == std::string::npos);
}

TEST_CASE("static files: none without a directory") {
  TestServer ts;
  const auto r = Http(ts.server().http_port(), "GET", "/");
  CHECK(r.status == 404);
  CHECK(r.Str("error") == "not_found");
}
