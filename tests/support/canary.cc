#include "support/canary.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "support/test_server.h"
#include "transport/tcp_client.h"
#include "transport/tcp_server.h"
#include "transport/websocket.h"

namespace im::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kBodyPrefix = "canary ";
constexpr auto kReceiverPingEvery = std::chrono::seconds(1);  // keeps its session alive

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The p-quantile (0..1) of sorted values, nearest rank; 0 when empty.
double Quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

std::unique_ptr<internal::ClientTransport> NewTransport(asio::io_context& io,
                                                        const std::string& url) {
  if (url.rfind("tcp://", 0) == 0) {
    std::string host;
    uint16_t port = 0;
    internal::SplitHostPort(url.substr(6), &host, &port);
    return internal::NewTcpClientTransport(io, host, port, 1 << 20);
  }
  return internal::NewWsClientTransport(io, url, 1 << 20);
}

std::string JsonString(const std::string& s) {  // tokens and ids: no characters to escape
  return "\"" + s + "\"";
}

}  // namespace

CanaryOptions CanaryFor(TestServer& server) {
  CanaryOptions o;
  o.sender_url = server.TcpUrl();
  o.receiver_url = server.WsUrl();
  o.sender_token = server.Token("canary-sender");
  o.receiver_token = server.Token("canary-receiver");
  o.receiver_user = "canary-receiver";
  return o;
}

std::string CanaryReport::ToString() const {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "canary: started=%d sent=%zu acked=%zu refused=%zu (first %d %s) received=%zu "
                "lost=%zu duplicates=%zu sender_closed=%d receiver_closed=%d push ms "
                "p50=%.1f p99=%.1f max=%.1f ack ms p50=%.1f p99=%.1f max=%.1f",
                started, sent, acked, refused, first_error, first_error_name.c_str(), received,
                lost, duplicates, sender_closed, receiver_closed, push_p50_ms, push_p99_ms,
                push_max_ms, ack_p50_ms, ack_p99_ms, ack_max_ms);
  return buf;
}

struct Canary::State {
  struct Entry {
    Clock::time_point sent;
    std::optional<Clock::time_point> acked;
    std::optional<Clock::time_point> pushed;
  };

  explicit State(CanaryOptions o) : options(std::move(o)) {}

  // On the io thread: a frame from the sender's or the receiver's connection.
  void OnFrame(bool from_sender, const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    if (d.HasParseError() || !d.IsObject()) return;
    const auto now = Clock::now();
    const bool response =
        d.HasMember("id") && d["id"].IsUint() && d.HasMember("code") && d["code"].IsInt();
    std::lock_guard<std::mutex> lock(mu);
    if (IsClose(d)) {
      (from_sender ? sender_closed : receiver_closed) = true;
    } else if (response && d["id"].GetUint() == 0) {
      (from_sender ? sender_login : receiver_login) = d["code"].GetInt();
    } else if (response && from_sender) {
      OnAck(d, now);
    } else if (!from_sender && !response && d.HasMember("cmd") && d["cmd"].IsString() &&
               std::string(d["cmd"].GetString()) == "chat.message" && d.HasMember("body") &&
               d["body"].IsObject() && d["body"].HasMember("body") &&
               d["body"]["body"].IsString()) {
      OnPush(d["body"]["body"].GetString(), now);
    }
    cv.notify_all();
  }

  // The response to send n (its id); mu held.
  void OnAck(const rapidjson::Document& d, Clock::time_point now) {
    const uint32_t id = d["id"].GetUint();
    if (id > entries.size() || entries[id - 1].acked) return;
    entries[id - 1].acked = now;
    const int code = d["code"].GetInt();
    if (code == 0) return;
    ++refused;
    if (first_error != 0) return;
    first_error = code;
    if (d.HasMember("error") && d["error"].IsString()) first_error_name = d["error"].GetString();
  }

  // A canary message pushed to the receiver, by its body "canary <n>"; mu held.
  void OnPush(const std::string& body, Clock::time_point now) {
    const size_t prefix = std::char_traits<char>::length(kBodyPrefix);
    if (body.compare(0, prefix, kBodyPrefix) != 0) return;
    const size_t n = std::strtoull(body.c_str() + prefix, nullptr, 10);
    if (n < 1 || n > entries.size()) return;
    if (entries[n - 1].pushed) {
      ++duplicates;
    } else {
      entries[n - 1].pushed = now;
    }
  }

  static bool IsClose(const rapidjson::Document& d) {
    if (d.HasMember("id") || !d.HasMember("cmd") || !d["cmd"].IsString()) return false;
    const std::string cmd = d["cmd"].GetString();
    return cmd == "session.closed" || cmd == "session.kicked";
  }

  // Connects one side and logs it in; false on failure.
  bool Connect(std::unique_ptr<internal::ClientTransport>* t, const std::string& url,
               const std::string& token, bool sender) {
    *t = NewTransport(io, url);
    (*t)->on_message = [this, sender](std::string text) { OnFrame(sender, text); };
    (*t)->on_close = [this, sender](int, std::string) {
      std::lock_guard<std::mutex> lock(mu);
      (sender ? sender_closed : receiver_closed) = true;
      cv.notify_all();
    };
    if (!(*t)->Connect(options.connect_timeout_ms).ok()) return false;
    (*t)->Send(R"({"id":0,"cmd":"login","body":{"token":)" + JsonString(token) +
               R"(,"device":"canary"}})");
    std::unique_lock<std::mutex> lock(mu);
    int* code = sender ? &sender_login : &receiver_login;
    cv.wait_for(lock, std::chrono::milliseconds(options.connect_timeout_ms),
                [code] { return *code != -1; });
    return *code == 0;
  }

  void SendLoop() {
    auto next = Clock::now();
    auto next_ping = next + kReceiverPingEvery;
    uint32_t ping_id = 1;
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      const auto now = Clock::now();
      entries.push_back(Entry{now, std::nullopt, std::nullopt});
      const std::string n = std::to_string(entries.size());
      lock.unlock();
      sender->Send(R"({"id":)" + n + R"(,"cmd":"chat.send","body":{"to":)" +
                   JsonString(options.receiver_user) + R"(,"cid":"canary-)" + n + R"(","body":")" +
                   kBodyPrefix + n + R"("}})");
      if (now >= next_ping) {
        receiver->Send(R"({"id":)" + std::to_string(ping_id++) + R"(,"cmd":"ping"})");
        next_ping = now + kReceiverPingEvery;
      }
      lock.lock();
      // After a stall the next send goes out one interval later, not in a burst to catch up.
      next = std::max(next + std::chrono::milliseconds(options.interval_ms), now);
      cv.wait_until(lock, next, [this] { return stopping; });
    }
  }

  CanaryReport Report() {  // mu held
    CanaryReport r;
    r.started = true;
    r.sent = entries.size();
    r.refused = refused;
    r.first_error = first_error;
    r.first_error_name = first_error_name;
    r.duplicates = duplicates;
    r.sender_closed = sender_closed;
    r.receiver_closed = receiver_closed;
    std::vector<double> push, ack;
    for (const Entry& e : entries) {
      if (e.acked) ack.push_back(Ms(*e.acked - e.sent));
      if (e.pushed) {
        push.push_back(Ms(*e.pushed - e.sent));
      } else {
        ++r.lost;
      }
    }
    r.acked = ack.size() - refused;
    r.received = push.size();
    std::sort(push.begin(), push.end());
    std::sort(ack.begin(), ack.end());
    r.push_p50_ms = Quantile(push, 0.5);
    r.push_p99_ms = Quantile(push, 0.99);
    r.push_max_ms = push.empty() ? 0 : push.back();
    r.ack_p50_ms = Quantile(ack, 0.5);
    r.ack_p99_ms = Quantile(ack, 0.99);
    r.ack_max_ms = ack.empty() ? 0 : ack.back();
    return r;
  }

  // Waits until every sent message was pushed and acked, or its deadline passed (the ack and the
  // push travel on different connections: either may come first).
  void WaitOutstanding(std::unique_lock<std::mutex>& lock) {
    const auto deadline_after = std::chrono::milliseconds(options.deadline_ms);
    for (;;) {
      std::optional<Clock::time_point> last;
      for (const Entry& e : entries) {
        if (!e.pushed || !e.acked) last = e.sent + deadline_after;
      }
      if (!last || Clock::now() >= *last) return;
      cv.wait_until(lock, *last);
    }
  }

  void Shutdown() {
    for (auto* t : {&sender, &receiver}) {
      if (*t) (*t)->Close();
      t->reset();  // no callback runs after this
    }
    work.reset();
    io.stop();
    if (io_thread.joinable()) io_thread.join();
  }

  const CanaryOptions options;
  asio::io_context io;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::thread send_thread;
  std::unique_ptr<internal::ClientTransport> sender, receiver;

  std::mutex mu;
  std::condition_variable cv;
  int sender_login = -1;  // login response code; -1 until it comes
  int receiver_login = -1;
  bool stopping = false;
  std::vector<Entry> entries;  // message n is entries[n - 1]
  size_t refused = 0;
  int first_error = 0;
  std::string first_error_name;
  size_t duplicates = 0;
  bool sender_closed = false;
  bool receiver_closed = false;
  bool started = false;
  bool stopped = false;
};

Canary::Canary(CanaryOptions options) : state_(std::make_unique<State>(std::move(options))) {}

Canary::~Canary() {
  if (!state_->stopped) Stop();
}

bool Canary::Start() {
  State& s = *state_;
  s.work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      s.io.get_executor());
  s.io_thread = std::thread([&s] { s.io.run(); });
  // The receiver first: every message is sent to a logged-in receiver.
  if (!s.Connect(&s.receiver, s.options.receiver_url, s.options.receiver_token, false) ||
      !s.Connect(&s.sender, s.options.sender_url, s.options.sender_token, true)) {
    return false;
  }
  s.started = true;
  s.send_thread = std::thread([&s] { s.SendLoop(); });
  return true;
}

CanaryReport Canary::Stop() {
  State& s = *state_;
  s.stopped = true;
  CanaryReport report;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    s.stopping = true;
    s.cv.notify_all();
  }
  if (s.send_thread.joinable()) s.send_thread.join();
  if (s.started) {
    std::unique_lock<std::mutex> lock(s.mu);
    s.WaitOutstanding(lock);
    report = s.Report();
  }
  s.Shutdown();
  return report;
}

}  // namespace im::test
