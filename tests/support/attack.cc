#include "support/attack.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "support/attack_socket.h"

namespace im::test::attack {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void CheckCanary(const CanaryReport& r) {
  INFO(r.ToString());
  CHECK(r.started);
  CHECK(r.sent >= kCanaryMinSent);
  CHECK(r.lost == 0);
  CHECK(r.refused == 0);
  CHECK(r.acked == r.sent);
  CHECK_FALSE(r.sender_closed);
  CHECK_FALSE(r.receiver_closed);
  CHECK(r.push_max_ms < kCanaryMaxLatencyMs);
  CHECK(r.ack_max_ms < kCanaryMaxLatencyMs);
}

void CheckStillServing(TestServer& ts) {
  static std::atomic<int> probes{0};
  const std::string user = "probe-" + std::to_string(++probes);
  RawClient c(ts.TcpUrl());
  REQUIRE(c.connected());
  rapidjson::Document d;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (uint32_t id = 1;; ++id) {
    REQUIRE(c.Call(id, "login", R"({"token":")" + ts.Token(user) + R"("})", &d));
    if (CodeOf(d) != 429 || !d.HasMember("retry_after_ms") || !d["retry_after_ms"].IsInt64()) {
      break;
    }
    const auto wait =
        std::chrono::milliseconds(std::min<int64_t>(d["retry_after_ms"].GetInt64(), 2000) + 1);
    if (Clock::now() + wait > deadline) break;
    std::this_thread::sleep_for(wait);
  }
  REQUIRE(CodeOf(d) == 0);
  REQUIRE(c.Call(100, "chat.send", R"({"to":"probe-peer","cid":"p","body":"still here"})", &d));
  CHECK(CodeOf(d) == 0);
}

HttpAnswer Http(uint16_t port, const std::string& method, const std::string& target,
                const std::string& body, int timeout_ms) {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "Connection: close\r\n\r\n" + body;
  HttpAnswer a;
  Socket s(port);
  if (!s.ok()) return a;
  // The server may answer (413) before it read the whole request: read the answer anyway.
  s.Write(request, timeout_ms);
  if (!s.ReadUntilClosed(timeout_ms)) return a;
  const std::string& raw = s.in();
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return a;
  a.status = std::atoi(raw.c_str() + 9);
  a.headers = raw.substr(0, end);
  a.body = raw.substr(end + 4);
  rapidjson::Document d;
  if (ParseJson(a.body, &d)) {
    a.error = ErrorOf(d);
    if (d.HasMember("retry_after_ms") && d["retry_after_ms"].IsInt64()) {
      a.retry_after_ms = d["retry_after_ms"].GetInt64();
    }
  }
  return a;
}

std::string MetricsText(TestServer& ts, double* ms) {
  const auto start = Clock::now();
  HttpAnswer a = Http(ts.server().http_port(), "GET", "/metrics");
  *ms = MsSince(start);
  return a.status == 200 ? a.body : std::string();
}

size_t SampleLines(const std::string& text) {
  size_t n = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (end > at && text[at] != '#') ++n;
    at = end + 1;
  }
  return n;
}

double Metric(TestServer& ts, const std::string& series) {
  std::map<std::string, double> m;
  if (!ScrapeMetrics(ts.server().http_port(), &m)) return -1;
  auto it = m.find(series);
  return it == m.end() ? 0 : it->second;
}

bool Online(TestServer& ts, const std::string& user) {
  auto found = ts.deps().sessions->Find({"default", user});
  return found.ok() && !found->empty();
}

std::string Escaped(const std::string& s) {
  const std::string quoted = JsonQuote(s);
  return quoted.substr(1, quoted.size() - 2);
}

std::string Printable(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    }
  }
  return out;
}

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (char ch : s) {
    char esc[8];
    std::snprintf(esc, sizeof(esc), "%%%02X", static_cast<unsigned char>(ch));
    out += esc;
  }
  return out;
}

std::map<int, size_t> Pipeline(RawClient& c, const std::vector<std::string>& frames) {
  constexpr size_t kBatch = 200;  // under max_pending_commands (256)
  std::map<int, size_t> codes;
  for (size_t at = 0; at < frames.size(); at += kBatch) {
    const size_t n = std::min(kBatch, frames.size() - at);
    for (size_t i = 0; i < n; ++i) c.Send(frames[at + i]);
    for (size_t i = 0; i < n; ++i) {
      auto text = c.NextText(10000);
      rapidjson::Document d;
      ++codes[text && ParseJson(*text, &d) ? CodeOf(d) : -1];
    }
  }
  return codes;
}

}  // namespace im::test::attack
