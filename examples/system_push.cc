// A host that pushes system messages from its own HTTP endpoint. Its back office calls
//   curl -X POST 'http://127.0.0.1:8080/notify?user=bob' -d 'Your order has shipped'
// and the text is stored in bob's inbox as a server-side message (from "", type "system") and
// pushed to bob's online sessions (Server::SendToUser); bob reads it later otherwise. The answer
// is 200 with the message's mid and seq, or the Status of a refusal (400, 413, 503, ...).
// The endpoint is a deliberately small HTTP/1.0 server: one request per connection, 16 KiB at
// most, one connection at a time. Memory backends.
//   system_push [TCP_LISTEN [NOTIFY_PORT]]      (default 127.0.0.1:7001 and 8080; 0: any)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "example_host.h"

namespace {

constexpr size_t kMaxRequestBytes = 16384;

// The request, read until its body is complete (Content-Length); "" when it is too large or the
// peer went away first.
std::string ReadRequest(int fd) {
  std::string request;
  char buf[4096];
  for (;;) {
    size_t end = request.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t length_at = request.find("Content-Length: ");
      size_t length = length_at < end ? std::strtoul(request.c_str() + length_at + 16, nullptr, 10)
                                      : 0;
      if (request.size() >= end + 4 + length) return request.substr(0, end + 4 + length);
    }
    if (request.size() >= kMaxRequestBytes) return "";
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return "";
    request.append(buf, static_cast<size_t>(n));
  }
}

// POST /notify?user=USER with the text as the body -> (HTTP status, response body).
std::pair<int, std::string> Handle(im::Server& server, const std::string& request) {
  const std::string prefix = "POST /notify?user=";
  if (request.rfind(prefix, 0) != 0) return {404, "POST /notify?user=USER only\n"};
  std::string user = request.substr(prefix.size(), request.find(' ', prefix.size()) -
                                                       prefix.size());
  std::string text = request.substr(request.find("\r\n\r\n") + 4);
  im::Result<im::SendReceipt> sent =
      server.SendToUser(im::UserKey{"default", user}, /*from=*/"", text, "system");
  if (!sent.ok()) return {static_cast<int>(sent.status().code()), sent.status().ToString() + "\n"};
  std::printf("pushed to %s: mid %llu\n", user.c_str(), static_cast<unsigned long long>(sent->mid));
  std::fflush(stdout);
  return {200, "{\"mid\":" + std::to_string(sent->mid) + "}\n"};
}

void Serve(int listener, im::Server& server) {
  for (;;) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;  // the listener was shut down
    std::string request = ReadRequest(fd);
    auto [status, body] = request.empty() ? std::make_pair(400, std::string("bad request\n"))
                                          : Handle(server, request);
    std::string response = "HTTP/1.0 " + std::to_string(status) + " \r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)!write(fd, response.data(), response.size());
    close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto keys = im::NewStaticKeyStore({{"default", "replace-with-32-random-bytes-key!"}});
  im::ServerOptions options;
  options.http_listen = "";  // this host has its own HTTP endpoint, and no WebSocket clients
  if (argc > 1) options.tcp_listen = argv[1];
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8080));
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t len = sizeof(addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 16) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("notify endpoint");
    return 1;
  }
  sigset_t stop = example::BlockStopSignals();
  im::Server server(options, example::MemoryDeps(keys));
  if (im::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  std::thread endpoint(Serve, listener, std::ref(server));
  example::PrintTokensAndPorts(*keys, server);
  std::printf("notify endpoint http://127.0.0.1:%u/notify?user=USER\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  example::WaitForStop(stop);
  shutdown(listener, SHUT_RDWR);  // ends accept
  endpoint.join();
  close(listener);
  server.Stop();
  return 0;
}
