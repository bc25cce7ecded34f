#include "support/test_server.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <asio.hpp>
#include <sstream>

#include "support/temp_dir.h"

#include "transport/tcp_client.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im::test {

std::function<void(ServerDeps&)> UseLevelDb(const std::string& dir) {
  return [dir](ServerDeps& deps) {
    PasswordHashOptions fast;
    fast.ops_limit = 1;
    fast.mem_limit = 8192;
    auto inbox = OpenLevelDbOfflineQueue(dir + "/inbox");
    auto groups = OpenLevelDbGroupService(dir + "/groups");
    auto users = OpenLevelDbUserStore(dir + "/users", fast);
    if (!inbox.ok() || !groups.ok() || !users.ok()) {
      throw std::runtime_error("cannot open LevelDB under " + dir + ": " +
                               (!inbox.ok() ? inbox.status() : !groups.ok() ? groups.status()
                                                                            : users.status())
                                   .ToString());
    }
    deps.inbox = std::move(*inbox);
    deps.groups = std::move(*groups);
    deps.users = std::move(*users);
  };
}

void ForEachStorage(const std::function<void(const std::function<void(ServerDeps&)>&)>& body) {
  SUBCASE("memory") { body(nullptr); }
  SUBCASE("leveldb") {
    TempDir dir;
    body(UseLevelDb(dir.path()));
  }
}

TestServer::TestServer(ServerOptions options, std::function<void(ServerDeps&)> customize,
                       const std::function<void(Server&)>& before_start) {
  keys_ = NewStaticKeyStore({{"default", std::string(32, 'k')}, {"acme", std::string(32, 'a')}});
  deps_.sessions = NewMemorySessionStore();
  deps_.router = NewLocalRouter();
  deps_.inbox = NewMemoryOfflineQueue();
  deps_.tokens = NewHs256Verifier(keys_);
  deps_.groups = NewMemoryGroupService();
  PasswordHashOptions fast;  // the minimum cost: tests hash many passwords
  fast.ops_limit = 1;
  fast.mem_limit = 8192;
  deps_.users = NewMemoryUserStore(fast);
  deps_.token_keys = keys_;
  if (options.admin_keys.empty()) options.admin_keys = {{"default", kAdminKey}};
  if (customize) customize(deps_);
  if (options.tcp_listen == ServerOptions{}.tcp_listen) options.tcp_listen = "127.0.0.1:0";
  if (options.http_listen == ServerOptions{}.http_listen) options.http_listen = "127.0.0.1:0";
  server_ = std::make_unique<Server>(options, deps_);
  if (before_start) before_start(*server_);
  Status s = server_->Start();
  if (!s.ok()) throw std::runtime_error("test server failed to start: " + s.ToString());
}

TestServer::~TestServer() { server_->Stop(); }

std::string TestServer::Token(const std::string& user, const std::string& tenant,
                              int64_t ttl_s) {
  auto t = SignHs256Token(*keys_, UserKey{tenant, user}, ttl_s, SystemClock()->NowMs());
  return t.ok() ? *t : std::string();
}

std::string TestServer::ExpiredToken(const std::string& user, const std::string& tenant) {
  auto t = SignHs256Token(*keys_, UserKey{tenant, user}, 60, SystemClock()->NowMs() - 3600000);
  return t.ok() ? *t : std::string();
}

std::string TestServer::TcpUrl() const {
  return "tcp://127.0.0.1:" + std::to_string(server_->tcp_port());
}
std::string TestServer::WsUrl() const {
  return "ws://127.0.0.1:" + std::to_string(server_->http_port()) + "/ws";
}

bool ParseJson(const std::string& text, rapidjson::Document* doc) {
  doc->Parse(text.c_str(), text.size());
  return !doc->HasParseError() && doc->IsObject();
}

int CodeOf(const rapidjson::Document& doc) {
  auto it = doc.FindMember("code");
  return it != doc.MemberEnd() && it->value.IsInt() ? it->value.GetInt() : -1;
}

std::string Str(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

std::string ErrorOf(const rapidjson::Document& doc) {
  auto it = doc.FindMember("error");
  return it != doc.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

RawClient::RawClient(const std::string& url, size_t max_frame_bytes)
    : io_(std::make_unique<asio::io_context>()) {
  if (url.rfind("tcp://", 0) == 0) {
    is_tcp_ = true;
    std::string host;
    uint16_t port = 0;
    internal::SplitHostPort(url.substr(6), &host, &port);
    transport_ = internal::NewTcpClientTransport(*io_, host, port, max_frame_bytes);
  } else {
    transport_ = internal::NewWsClientTransport(*io_, url, max_frame_bytes);
  }
  transport_->on_message = [this](std::string text) {
    bytes_received_ += text.size() + (is_tcp_ ? 4 : 0);
    std::lock_guard<std::mutex> lock(mu_);
    if (is_tcp_) {
      // TCP reports its close code in a session.closed push.
      rapidjson::Document d;
      if (ParseJson(text, &d) && d.HasMember("cmd") && d["cmd"].IsString() &&
          std::string(d["cmd"].GetString()) == "session.closed" && d.HasMember("body") &&
          d["body"].IsObject() && d["body"].HasMember("code")) {
        close_code_ = d["body"]["code"].GetInt();
      }
    }
    inbox_.push_back(std::move(text));
    cv_.notify_all();
  };
  transport_->on_close = [this](int code, std::string) {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    if (!is_tcp_ || close_code_ == 0) close_code_ = code;
    cv_.notify_all();
  };
  auto work = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_->get_executor());
  thread_ = std::thread([this, work]() mutable {
    io_->run();
    (void)work;
  });
  connected_ = transport_->Connect(5000).ok();
}

RawClient::~RawClient() {
  transport_->Close();
  io_->stop();
  if (thread_.joinable()) thread_.join();
  transport_.reset();
}

void RawClient::Send(const std::string& json) {
  bytes_sent_ += json.size() + (is_tcp_ ? 4 : 0);
  transport_->Send(json);
}
void RawClient::SendRaw(const std::string& bytes) {
  bytes_sent_ += bytes.size();
  transport_->SendRaw(bytes);
}
void RawClient::Close() { transport_->Close(); }

std::optional<std::string> RawClient::NextText(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [this] { return !inbox_.empty() || closed_; });
  if (inbox_.empty()) return std::nullopt;
  std::string s = std::move(inbox_.front());
  inbox_.pop_front();
  return s;
}

bool RawClient::WaitMatching(const std::function<bool(const rapidjson::Document&)>& match,
                             rapidjson::Document* doc, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(mu_);
  size_t scanned = 0;
  for (;;) {
    for (; scanned < inbox_.size(); ++scanned) {
      rapidjson::Document d;
      if (ParseJson(inbox_[scanned], &d) && match(d)) {
        doc->Swap(d);
        inbox_.erase(inbox_.begin() + static_cast<std::ptrdiff_t>(scanned));
        return true;
      }
    }
    if (closed_) return false;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && scanned >= inbox_.size()) {
      return false;
    }
  }
}

bool RawClient::WaitResponse(uint32_t id, rapidjson::Document* doc, int timeout_ms) {
  return WaitMatching(
      [id](const rapidjson::Document& d) {
        return d.HasMember("id") && d["id"].IsUint() && d["id"].GetUint() == id;
      },
      doc, timeout_ms);
}

bool RawClient::WaitPush(const std::string& cmd, rapidjson::Document* doc, int timeout_ms) {
  return WaitMatching(
      [&cmd](const rapidjson::Document& d) {
        return !d.HasMember("id") && d.HasMember("cmd") && d["cmd"].IsString() &&
               cmd == d["cmd"].GetString();
      },
      doc, timeout_ms);
}

bool RawClient::Call(uint32_t id, const std::string& cmd, const std::string& body_json,
                     rapidjson::Document* doc, int timeout_ms) {
  std::string frame = "{\"id\":" + std::to_string(id) + ",\"cmd\":\"" + cmd + "\"";
  if (!body_json.empty()) frame += ",\"body\":" + body_json;
  frame += "}";
  Send(frame);
  return WaitResponse(id, doc, timeout_ms);
}

int RawClient::Login(const std::string& token, const std::string& device) {
  rapidjson::Document d;
  uint32_t id = next_id_++;
  if (!Call(id, "login", "{\"token\":\"" + token + "\",\"device\":\"" + device + "\"}", &d)) {
    return -1;
  }
  return CodeOf(d);
}

int RawClient::WaitClosed(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return closed_; })) {
    return -1;
  }
  return close_code_;
}

bool RawClient::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

size_t RawClient::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return inbox_.size();
}

namespace {
bool ParsePrometheus(const std::string& text, std::map<std::string, double>* out) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos || sp == 0) return false;
    char* end = nullptr;
    double v = std::strtod(line.c_str() + sp + 1, &end);
    if (*end != '\0') return false;
    (*out)[line.substr(0, sp)] = v;
  }
  return true;
}
}  // namespace

std::string HttpRoundTrip(uint16_t port, const std::string& request, const std::string& from) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  asio::error_code ec;
  s.open(asio::ip::tcp::v4(), ec);
  if (!ec) s.bind({asio::ip::make_address(from), 0}, ec);
  if (!ec) s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return "";
  timeval timeout{30, 0};  // an answer that never comes fails the test instead of hanging it
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  asio::write(s, asio::buffer(request), ec);  // the server may answer (413) before reading it all
  std::string resp;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    resp.append(buf, n);
    if (ec) break;
  }
  return resp;
}

bool ScrapeMetrics(uint16_t port, std::map<std::string, double>* out) {
  std::string resp =
      HttpRoundTrip(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return false;
  if (resp.substr(0, body).find("text/plain; version=0.0.4") == std::string::npos) return false;
  return ParsePrometheus(resp.substr(body + 4), out);
}

}  // namespace im::test
