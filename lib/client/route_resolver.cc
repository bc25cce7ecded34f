#include "client/route_resolver.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "protocol/json.h"

namespace im::internal {
namespace {

constexpr size_t kMaxAnswerBytes = 64 << 10;

// Closes the socket on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

Status Unreachable(const std::string& url, const std::string& why) {
  return Status::Unavailable("route endpoint " + url + ": " + why);
}

}  // namespace

Result<std::string> HttpGet(const std::string& url, int64_t timeout_ms) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return Status::BadRequest("route_url must be http://: " + url);
  const size_t slash = url.find('/', kScheme.size());
  const std::string authority =
      url.substr(kScheme.size(), slash == std::string::npos ? std::string::npos
                                                            : slash - kScheme.size());
  const std::string target = slash == std::string::npos ? "/" : url.substr(slash);
  const size_t colon = authority.rfind(':');
  const bool bracketed = !authority.empty() && authority[0] == '[';
  std::string host = colon == std::string::npos ? authority : authority.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  if (bracketed && host.size() >= 2) host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty()) return Status::BadRequest("bad route_url: " + url);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Unreachable(url, "cannot resolve " + host);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(1, timeout_ms));
  Fd s;
  s.fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int connected = s.fd < 0 ? -1 : ::connect(s.fd, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  if (s.fd < 0) return Unreachable(url, "no socket");
  if (connected != 0) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (errno != EINPROGRESS || !WaitFor(s.fd, POLLOUT, deadline) ||
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return Unreachable(url, "cannot connect");
    }
  }
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + authority +
                              "\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    if (!WaitFor(s.fd, POLLOUT, deadline)) return Unreachable(url, "timed out");
    const ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return Unreachable(url, "send failed");
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    if (!WaitFor(s.fd, POLLIN, deadline)) return Unreachable(url, "timed out");
    const ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Unreachable(url, "connection reset");
    }
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > kMaxAnswerBytes) return Unreachable(url, "answer too large");
  }
  if (answer.size() < 12 || answer.compare(0, 5, "HTTP/") != 0) {
    return Unreachable(url, "not an HTTP answer");
  }
  const int status = std::atoi(answer.c_str() + 9);
  const size_t split = answer.find("\r\n\r\n");
  if (status != 200 || split == std::string::npos) {
    return Unreachable(url, "answered HTTP " + std::to_string(status));
  }
  return answer.substr(split + 4);
}

std::vector<std::string> RouteCandidates(const ClientOptions& options) {
  std::vector<std::string> urls;
  if (!options.route_url.empty()) {
    Result<std::string> body = HttpGet(options.route_url, options.connect_timeout_ms);
    rapidjson::Document doc;
    if (body.ok() && ParseJson(*body, &doc).ok() && doc.IsObject() &&
        doc.HasMember("gateways") && doc["gateways"].IsArray()) {
      const char* want = options.url.rfind("ws://", 0) == 0 ? "ws" : "tcp";
      for (const rapidjson::Value& g : doc["gateways"].GetArray()) {
        if (urls.size() == kMaxRouteGateways) break;
        if (!g.IsObject() || !g.HasMember(want) || !g[want].IsString()) continue;
        urls.emplace_back(g[want].GetString(), g[want].GetStringLength());
      }
    }
  }
  if (std::find(urls.begin(), urls.end(), options.url) == urls.end()) {
    urls.push_back(options.url);
  }
  return urls;
}

}  // namespace im::internal
