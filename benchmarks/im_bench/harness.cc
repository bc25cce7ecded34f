#include <chrono>
#include <cstdio>
#include <thread>

#include "scenario.h"

namespace imbench {

void SleepUntil(int64_t ns) {
  int64_t now = NowNs();
  if (ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(ns - now));
}

Harness::Harness(const Options& options) : o_(options) {
  server_ = asio::ip::tcp::endpoint(asio::ip::make_address(o_.host),
                                    static_cast<uint16_t>(o_.port));
  if (o_.target == "im-tcp" || o_.target == "im-ws") HexDecode(o_.key, &raw_key_);
  int n = o_.threads < 1 ? 1 : o_.threads;
  for (int i = 0; i < n; ++i) threads_.push_back(std::make_unique<ThreadCtx>(i));
}

Harness::~Harness() { Shutdown(false); }

Client* Harness::AddClient(size_t i, ClientEvents* events, ClientConfig config) {
  const auto index = static_cast<uint32_t>(clients_.size());
  clients_.push_back(MakeClient(o_, ThreadFor(i), events, index, std::move(config)));
  return clients_.back().get();
}

void Harness::StartThreads() {
  for (auto& t : threads_) {
    std::vector<Client*> mine;
    for (auto& c : clients_) {
      if (&c->thread() == t.get()) mine.push_back(c.get());
    }
    t->tickers.push_back([mine](int64_t now) {
      for (Client* c : mine) c->Tick(now);
    });
  }
  for (auto& t : threads_) t->Start();
  started_ = true;
}

bool Harness::StartClients(const std::vector<Client*>& list, size_t batch, double timeout_s) {
  const int64_t deadline = NowNs() + static_cast<int64_t>(timeout_s * 1e9);
  const uint64_t ready_base = Ready();
  const uint64_t failed_base = Failed();
  size_t next = 0;
  for (;;) {
    const uint64_t done = Ready() - ready_base + Failed() - failed_base;
    // Keep at most `batch` connecting: start more as earlier ones finish.
    while (next < list.size() && next - done < batch) {
      Client* c = list[next++];
      asio::post(c->thread().io(), [this, c] { c->Start(server_); });
    }
    if (done >= list.size()) break;
    if (NowNs() >= deadline) {
      start_error_ = "only " + std::to_string(Ready() - ready_base) + " of " +
                     std::to_string(list.size()) + " clients logged in within " +
                     std::to_string(static_cast<int>(timeout_s)) + " s (" +
                     std::to_string(Failed() - failed_base) + " failed)";
      if (!FirstError().empty()) start_error_ += "; first error: " + FirstError();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (Failed() == failed_base) return true;
  start_error_ = std::to_string(Failed() - failed_base) + " of " + std::to_string(list.size()) +
                 " clients failed to log in; first error: " + FirstError();
  return false;
}

void Harness::Shutdown(bool goodbye) {
  if (shut_down_) return;
  shut_down_ = true;
  g_run.stopping.store(true);
  if (started_) {
    if (goodbye) {
      for (auto& t : threads_) {
        t->RunSync([&] {
          for (auto& c : clients_) {
            if (&c->thread() == t.get()) c->Goodbye();
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& t : threads_) {
      t->RunSync([&] {
        for (auto& c : clients_) {
          if (&c->thread() == t.get()) c->Close();
        }
      });
    }
    for (auto& t : threads_) t->Stop();
  }
  clients_.clear();
}

bool Harness::WaitFor(double timeout_s, const std::function<bool()>& done) {
  const int64_t deadline = NowNs() + static_cast<int64_t>(timeout_s * 1e9);
  while (!done()) {
    if (NowNs() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

uint64_t Harness::Ready() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.ready.load(std::memory_order_relaxed);
  return n;
}
uint64_t Harness::Failed() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.failed.load(std::memory_order_relaxed);
  return n;
}
uint64_t Harness::Errors() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.errors.load(std::memory_order_relaxed);
  return n;
}
uint64_t Harness::DeliveredTotal() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.delivered_total.load(std::memory_order_relaxed);
  return n;
}
std::string Harness::FirstError() const {
  for (auto& t : threads_) {
    std::string e = t->stats.FirstError();
    if (!e.empty()) return e;
  }
  return "";
}
uint64_t Harness::SumDelivered() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.delivered;
  return n;
}
uint64_t Harness::SumAcked() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.acked;
  return n;
}
uint64_t Harness::SumLogins() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.logins;
  return n;
}
uint64_t Harness::SumSent() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.sent_total;
  return n;
}
uint64_t Harness::SumAckedTotal() const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.acked_total;
  return n;
}

void Harness::MergeInto(RunResult* r, bool delivery, bool ack, bool login) const {
  for (auto& t : threads_) {
    if (delivery) r->latency.Merge(t->stats.delivery);
    if (login) r->latency.Merge(t->stats.login);
    if (ack) r->ack.Merge(t->stats.ack);
  }
  r->has_latency = delivery || login;
  r->latency_name = login ? "login" : "delivery";
  r->has_ack = ack;
}

std::string Harness::Token(const std::string& user) const {
  if (raw_key_.empty()) return "";
  return MintToken(raw_key_, user, o_.tenant, 3600);
}

RunResult Harness::NewResult() const {
  RunResult r;
  r.target = o_.target;
  r.scenario = o_.scenario;
  r.label = o_.label;
  if (o_.target == "mqtt" && (o_.scenario == "chat" || o_.scenario == "group")) {
    r.variant = o_.qos >= 1 ? "qos1" : "qos0";
  }
  return r;
}

}  // namespace imbench
