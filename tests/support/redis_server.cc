#include "support/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace im::test {
namespace {

using Clock = std::chrono::steady_clock;

// The first executable `name` on PATH, then in /usr/bin and /usr/sbin; "" when none.
std::string FindProgram(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/sbin";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A port the kernel just handed out for 127.0.0.1 (bound to port 0, then closed). Another
// process may take it before redis-server binds it: the caller retries then.
int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Connects to 127.0.0.1:port, sends `request`, reads the first reply line; "" on any failure.
std::string Exchange(int port, const std::string& request, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string line;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char c;
    while (recv(fd, &c, 1, 0) == 1) {
      if (c == '\n') break;
      line += c;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  close(fd);
  return line;
}

std::string Resp(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  }
  return out;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  binary_ = FindProgram("redis-server");
  if (binary_.empty()) {
    throw std::runtime_error(
        "redis-server is not installed (scripts/setup.sh installs it); the Redis tests need it");
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = PickFreePort();
    if (TryStart()) return;
  }
  throw std::runtime_error("redis-server did not start; see its log in " + dir());
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitExit();
  }
}

std::string RedisServer::url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

bool RedisServer::TryStart() {
  const std::string conf = dir() + "/redis.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << "bind 127.0.0.1\n"
        << "port " << port_ << "\n"
        << "dir " << dir() << "\n"
        << "logfile " << dir() << "/redis.log\n"
        << "daemonize no\n"
        << "appendonly yes\n"
        << "appendfsync " << options_.appendfsync << "\n"
        << "save \"\"\n"
        << "enable-debug-command local\n";
    for (const std::string& line : options_.extra_config) out << line << "\n";
  }
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // A test that dies must not leave its server behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(binary_.c_str(), binary_.c_str(), conf.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: most likely the port was taken
      pid_ = -1;
      return false;
    }
    if (Exchange(port_, Resp({"PING"}), 1000) == "+PONG") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  return false;
}

void RedisServer::Start() {
  if (pid_ > 0) return;
  // The port was ours a moment ago; a few tries cover a slow exit of the old process.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (TryStart()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("redis-server did not start again on port " + std::to_string(port_));
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  WaitExit();
}

void RedisServer::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitExit();
}

void RedisServer::WaitExit() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string RedisServer::Command(const std::vector<std::string>& args) const {
  std::string line = Exchange(port_, Resp(args), 30000);
  if (line.empty()) throw std::runtime_error("redis-server did not answer " + args.at(0));
  return line;
}

void RedisServer::FlushAll() const {
  const std::string reply = Command({"FLUSHALL"});
  if (reply != "+OK") throw std::runtime_error("FLUSHALL answered " + reply);
}

}  // namespace im::test
