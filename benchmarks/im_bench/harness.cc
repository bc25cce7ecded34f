#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "scenario.h"

namespace imbench {

long NotAccepted(int port, bool half_open) {
  constexpr uint8_t kSynRecv = 3, kListen = 10;  // the kernel's TCP states
  long queued = -1;
  long pending = 0;
  for (uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
    const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = (1u << kListen) | (half_open ? 1u << kSynRecv : 0u);
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    if (sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
      close(fd);
      return -1;
    }
    static thread_local char buf[32768];
    bool done = false;
    while (!done) {
      const ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got <= 0) break;
      const size_t n = static_cast<size_t>(got);
      size_t at = 0;
      while (at + sizeof(nlmsghdr) <= n) {
        nlmsghdr h;
        std::memcpy(&h, buf + at, sizeof h);
        if (h.nlmsg_len < sizeof h || at + h.nlmsg_len > n) break;
        if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        if (h.nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
          inet_diag_msg m;
          std::memcpy(&m, buf + at + NLMSG_HDRLEN, sizeof m);
          if (ntohs(m.id.idiag_sport) == port) {
            if (m.idiag_state == kListen) queued = (queued < 0 ? 0 : queued) + m.idiag_rqueue;
            if (m.idiag_state == kSynRecv) ++pending;
          }
        }
        at += NLMSG_ALIGN(h.nlmsg_len);
      }
    }
    close(fd);
  }
  return queued < 0 ? -1 : queued + pending;
}

void SleepUntil(int64_t ns) {
  int64_t now = NowNs();
  if (ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(ns - now));
}

Harness::Harness(const Options& options) : o_(options) {
  for (int port : o_.ports.empty() ? std::vector<int>{o_.port} : o_.ports) {
    servers_.emplace_back(asio::ip::make_address(o_.host), static_cast<uint16_t>(port));
  }
  if (o_.target == "im-tcp" || o_.target == "im-ws") {
    HexDecode(o_.key, &raw_key_);
    HexDecode(o_.key_b.empty() ? o_.key : o_.key_b, &raw_key_b_);
  }
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
      asio::post(c->thread().io(), [this, c] { c->Start(server_for(c->index())); });
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

uint64_t Harness::SumAtomic(std::atomic<uint64_t> ThreadStats::*field) const {
  uint64_t n = 0;
  for (auto& t : threads_) n += (t->stats.*field).load(std::memory_order_relaxed);
  return n;
}
uint64_t Harness::Ready() const { return SumAtomic(&ThreadStats::ready); }
uint64_t Harness::Failed() const { return SumAtomic(&ThreadStats::failed); }
uint64_t Harness::Errors() const { return SumAtomic(&ThreadStats::errors); }
uint64_t Harness::DeliveredTotal() const { return SumAtomic(&ThreadStats::delivered_total); }
std::string Harness::FirstError() const {
  for (auto& t : threads_) {
    std::string e = t->stats.FirstError();
    if (!e.empty()) return e;
  }
  return "";
}
uint64_t Harness::Sum(uint64_t ThreadStats::*field) const {
  uint64_t n = 0;
  for (auto& t : threads_) n += t->stats.*field;
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

std::string Harness::TokenB(const std::string& user) const {
  if (raw_key_b_.empty()) return "";
  return MintToken(raw_key_b_, user, o_.tenant_b, 3600);
}

RunResult Harness::NewResult() const {
  RunResult r;
  r.target = o_.target;
  r.scenario = o_.scenario;
  r.label = o_.label;
  if (o_.target == "mqtt" && (o_.scenario == "chat" || o_.scenario == "group")) {
    r.variant = o_.qos >= 1 ? "qos1" : "qos0";
  }
  if (o_.scenario == "login") r.mode = o_.login_mode;
  return r;
}

}  // namespace imbench
