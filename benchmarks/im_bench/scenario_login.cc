// The login scenario in two modes.
//   churn:       C workers each loop connect, log in, close (connection setup included).
//   established: rounds of N fresh users: open N connections (untimed), send every login with
//                at most C in flight (timed: send -> response), close them all (untimed).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "scenario.h"

namespace imbench {

namespace {

// ---- churn ----

constexpr int kUsersPerWorker = 8;  // each worker logs in its own users in turn

class LoginRun final : public ClientEvents {
 public:
  explicit LoginRun(Harness& h) : h_(h) {
    const Options& o = h.options();
    users_.resize(static_cast<size_t>(o.concurrency));
    tokens_.resize(users_.size());
    for (size_t w = 0; w < users_.size(); ++w) {
      for (int k = 0; k < kUsersPerWorker; ++k) {
        std::string user = RunId() + "l" + std::to_string(w) + "x" + std::to_string(k);
        tokens_[w].push_back(h.Token(user));
        users_[w].push_back(std::move(user));
      }
    }
    attempts_.assign(users_.size(), 0);
  }

  void CreateClients() {
    for (size_t w = 0; w < users_.size(); ++w) {
      ClientConfig config;
      config.user = users_[w][0];
      config.token = tokens_[w][0];
      h_.AddClient(w, this, config);
    }
    for (auto& c : h_.clients()) {
      timers_.push_back(std::make_unique<asio::steady_timer>(c->thread().io()));
    }
  }

  void OnReady(Client& c) override {
    const int64_t now = NowNs();
    ThreadStats& st = c.stats();
    if (g_run.InWindow(now)) {
      st.logins++;
      st.login.Record(now - c.start_ns());
    }
    c.Close();
    Next(c);
  }

  void OnFailed(Client& c, const std::string& why) override {
    if (g_run.stopping.load(std::memory_order_relaxed)) return;
    c.stats().Error(why);
    c.Close();
    // Try again a little later so a refusing server does not make this spin.
    auto& timer = *timers_[c.index()];
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([this, &c](const asio::error_code& ec) {
      if (!ec) Next(c);
    });
  }

  void OnChat(Client&, std::string_view) override {}
  void OnSendDone(Client&, uint64_t, bool, int64_t) override {}

 private:
  void Next(Client& c) {
    if (g_run.stopping.load(std::memory_order_relaxed)) return;
    const size_t w = c.index();
    const size_t k = static_cast<size_t>(++attempts_[w] % kUsersPerWorker);
    c.mutable_config().user = users_[w][k];
    c.mutable_config().token = tokens_[w][k];
    c.Start(h_.server());
  }

  Harness& h_;
  std::vector<std::vector<std::string>> users_;
  std::vector<std::vector<std::string>> tokens_;
  std::vector<uint64_t> attempts_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
};

// ---- established ----

constexpr int64_t kPhaseStallNs = 5'000'000'000;  // a phase without progress this long gives up
constexpr int64_t kAcceptWaitNs = 3'000'000'000;  // a dropped ACK is retried after 1 s, 2 s

class EstablishedRun final : public ClientEvents {
 public:
  explicit EstablishedRun(Harness& h) : h_(h), o_(h.options()) {}

  void CreateClients() {
    const size_t n = static_cast<size_t>(o_.login_connections);
    const size_t threads = h_.thread_count();
    lanes_.resize(threads);
    for (size_t i = 0; i < n; ++i) {
      ClientConfig config;
      config.defer_login = true;
      Client* c = h_.AddClient(i, this, config);
      lanes_[static_cast<size_t>(c->thread().index())].clients.push_back(c);
    }
    active_lanes_ = std::min(n, threads);
    state_.assign(n, St::kIdle);
    sent_ns_.assign(n, 0);
    for (Lane& lane : lanes_) {
      lane.connect_limit = std::max<size_t>(1, kConnectBatch / threads);
      lane.login_limit =
          std::max<size_t>(1, (static_cast<size_t>(o_.concurrency) + threads - 1) / threads);
    }
  }

  // Rounds until the measured interval ends. The first measured round runs whole (every
  // connection opened and logged in) however long it takes, so a run always has one.
  void Run() {
    const int64_t start = NowNs() + static_cast<int64_t>(o_.warmup * 1e9);
    const int64_t end = start + static_cast<int64_t>(o_.seconds * 1e9);
    g_run.measure_start_ns.store(start);
    g_run.measure_end_ns.store(end);
    for (uint64_t round = 0; abort_.empty(); ++round) {
      const bool whole = rounds_ == 0;
      if (!whole && NowNs() >= end) break;
      Prepare(round);
      const uint64_t opened_before = opened_.load();
      const int64_t c0 = NowNs();
      const bool connected =
          Phase(&EstablishedRun::PumpConnect, whole ? INT64_MAX : end, "connect");
      const int64_t c1 = NowNs();
      const uint64_t opened = opened_.load() - opened_before;
      if (connected && opened == 0 && (whole || NowNs() < end)) abort_ = "no connection opened";
      if (!connected || !abort_.empty() || (!whole && NowNs() >= end)) {
        CloseAll();
        break;
      }
      WaitAccepted();
      if (!whole && NowNs() >= end) {
        CloseAll();
        break;
      }
      measured_ = NowNs() >= start;
      const uint64_t answered_before = answered_.load();
      Phase(&EstablishedRun::PumpLogin, !measured_ ? start : whole ? INT64_MAX : end, "login");
      int64_t first = INT64_MAX, last = 0;
      for (const Lane& lane : lanes_) {
        first = std::min(first, lane.first_send);
        last = std::max(last, lane.last_response);
      }
      if (measured_ && last > first) {
        const uint64_t answered = answered_.load() - answered_before;
        const double rate = static_cast<double>(answered) * 1e9 / static_cast<double>(last - first);
        round_min_ = rounds_ == 0 ? rate : std::min(round_min_, rate);
        round_max_ = std::max(round_max_, rate);
        ++rounds_;
        login_ns_ += last - first;
        connect_ns_ += c1 - c0;
        connected_ += opened;
        logins_ += answered;
      } else if (measured_ && whole && abort_.empty()) {
        abort_ = "no login could be sent (every connection was lost)";
      }
      CloseAll();
    }
  }

  void Fill(RunResult* r) {
    r->Param("connections", o_.login_connections);
    r->Param("concurrency", o_.concurrency);
    if (o_.threads > 1) r->Param("threads", o_.threads);
    const double login_s = static_cast<double>(login_ns_) / 1e9;
    const double connect_s = static_cast<double>(connect_ns_) / 1e9;
    r->seconds = login_s;
    r->unit = "logins/s";
    r->rate = login_s > 0 ? static_cast<double>(logins_) / login_s : 0;
    h_.MergeInto(r, false, false, true);
    r->errors = h_.Errors();
    r->extra.emplace_back("rounds", static_cast<double>(rounds_));
    r->extra.emplace_back("logins", static_cast<double>(logins_));
    r->extra.emplace_back("login_phase_s", std::round(login_s * 1e6) / 1e6);
    r->extra.emplace_back("round_rate_min", std::round(round_min_));
    r->extra.emplace_back("round_rate_max", std::round(round_max_));
    r->extra.emplace_back("connects_per_s",
                          connect_s > 0 ? std::round(static_cast<double>(connected_) / connect_s)
                                        : 0);
    r->extra.emplace_back("connect_phase_s", std::round(connect_s * 1e6) / 1e6);
    r->extra.emplace_back("connect_errors", static_cast<double>(connect_errors_.load()));
    r->extra.emplace_back("login_errors", static_cast<double>(login_errors_.load()));
    r->extra.emplace_back("lost", static_cast<double>(lost_.load()));
    r->extra.emplace_back("timeouts", static_cast<double>(timeouts_.load()));
    r->extra.emplace_back("accept_waits", static_cast<double>(accept_waits_));
    std::string note;
    if (!abort_.empty()) note += "stopped early: " + abort_ + "; ";
    if (!h_.FirstError().empty()) note += "first error: " + h_.FirstError();
    r->note = note;
  }

  uint64_t logins() const { return logins_; }

  // ClientEvents, on the client's thread.
  void OnOpened(Client& c) override {
    if (state_[c.index()] != St::kConnecting) return;
    state_[c.index()] = St::kOpen;
    opened_.fetch_add(1, std::memory_order_relaxed);
    opened_since_poll_.fetch_add(1, std::memory_order_relaxed);
    Progress(c);
    PumpConnect(LaneOf(c));
  }

  void OnReady(Client& c) override {
    const uint32_t i = c.index();
    if (state_[i] != St::kLoggingIn) return;
    const int64_t now = NowNs();
    state_[i] = St::kDone;
    answered_.fetch_add(1, std::memory_order_relaxed);
    if (measured_) {
      c.stats().logins++;
      c.stats().login.Record(now - sent_ns_[i]);
    }
    Answered(c, now);
  }

  void OnFailed(Client& c, const std::string& why) override {
    if (g_run.stopping.load(std::memory_order_relaxed)) return;
    const uint32_t i = c.index();
    const St was = state_[i];
    state_[i] = St::kDead;
    switch (was) {
      case St::kConnecting:
        connect_errors_.fetch_add(1, std::memory_order_relaxed);
        c.stats().Error(why);
        Progress(c);
        PumpConnect(LaneOf(c));
        break;
      case St::kLoggingIn:  // refused (a non-zero code, a CONNACK error) or closed
        login_errors_.fetch_add(1, std::memory_order_relaxed);
        c.stats().Error(why);
        Answered(c, NowNs());
        break;
      case St::kOpen:
      case St::kDone:
        lost_.fetch_add(1, std::memory_order_relaxed);
        c.stats().Error(std::string(was == St::kOpen ? "closed before its login: "
                                                     : "closed after its login: ") +
                        why);
        break;
      default:
        break;
    }
  }

  void OnChat(Client&, std::string_view) override {}
  void OnSendDone(Client&, uint64_t, bool, int64_t) override {}

 private:
  enum class St : uint8_t { kIdle, kConnecting, kOpen, kLoggingIn, kDone, kDead };

  // The clients of one thread and the phase's progress on it (touched on that thread only;
  // the main thread reads it after the phase).
  struct Lane {
    std::vector<Client*> clients;
    size_t connect_limit = 1;
    size_t login_limit = 1;
    size_t next = 0;
    size_t inflight = 0;
    bool connecting = false;  // the phase is the connect phase
    bool done = false;
    int64_t first_send = INT64_MAX;
    int64_t last_response = 0;
  };

  Lane& LaneOf(Client& c) { return lanes_[static_cast<size_t>(c.thread().index())]; }

  void Progress(Client& c) {
    --LaneOf(c).inflight;
    progress_.fetch_add(1, std::memory_order_relaxed);
  }

  void Answered(Client& c, int64_t now) {
    Lane& lane = LaneOf(c);
    lane.last_response = std::max(lane.last_response, now);
    Progress(c);
    PumpLogin(lane);
  }

  // Fresh users (and their tokens, minted here, outside the timed phase) for every client.
  void Prepare(uint64_t round) {
    const std::string prefix = RunId() + "l" + std::to_string(round) + "_";
    for (auto& c : h_.clients()) {
      ClientConfig& config = c->mutable_config();
      config.user = prefix + std::to_string(c->index());
      config.token = h_.Token(config.user);
    }
  }

  // Runs one phase on every lane until each is done; false when it stalled (abort_ says why).
  bool Phase(void (EstablishedRun::*pump)(Lane&), int64_t stop_ns, const char* what) {
    stop_ns_.store(stop_ns);
    lanes_done_.store(0);
    size_t active = 0;
    const bool connecting = pump == &EstablishedRun::PumpConnect;
    queued_.store(0);
    opened_since_poll_.store(0);
    for (Lane& lane : lanes_) {
      if (lane.clients.empty()) continue;
      ++active;
      Lane* lp = &lane;
      asio::post(lane.clients.front()->thread().io(), [this, lp, pump, connecting] {
        lp->connecting = connecting;
        lp->next = 0;
        lp->inflight = 0;
        lp->done = false;
        lp->first_send = INT64_MAX;
        lp->last_response = 0;
        (this->*pump)(*lp);
      });
    }
    uint64_t seen = progress_.load();
    int64_t since = NowNs();
    while (lanes_done_.load(std::memory_order_acquire) < active) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (connecting) Pace();
      const uint64_t now_seen = progress_.load();
      if (now_seen != seen) {
        seen = now_seen;
        since = NowNs();
      } else if (NowNs() - since > kPhaseStallNs) {
        abort_ = std::string(what) + " phase: no progress for 5 s";
        Abort();
        return false;
      }
    }
    return true;
  }

  // Stops the current phase: what is still in flight counts as timed out.
  void Abort() {
    stop_ns_.store(0);
    for (Lane& lane : lanes_) {
      if (lane.clients.empty()) continue;
      lane.clients.front()->thread().RunSync([&] {
        for (Client* c : lane.clients) {
          St& s = state_[c->index()];
          if (s != St::kConnecting && s != St::kLoggingIn) continue;
          c->stats().Error(s == St::kConnecting ? "connect: no answer within 5 s"
                                                : "login: no response within 5 s");
          timeouts_.fetch_add(1, std::memory_order_relaxed);
          s = St::kDead;
        }
        lane.inflight = 0;
        lane.next = lane.clients.size();
        Done(lane);
      });
    }
  }

  void Done(Lane& lane) {
    if (lane.done || lane.inflight > 0) return;
    if (lane.next < lane.clients.size() && NowNs() < stop_ns_.load(std::memory_order_relaxed)) {
      return;
    }
    lane.done = true;
    lanes_done_.fetch_add(1, std::memory_order_acq_rel);
  }

  // Connecting: the server's accept queue as last seen, and connections opened since.
  size_t Unaccepted() const {
    return static_cast<size_t>(queued_.load(std::memory_order_relaxed)) / active_lanes_ +
           opened_since_poll_.load(std::memory_order_relaxed);
  }

  // Connecting, on the main thread every millisecond: keeps the connections the server has
  // not accepted yet (its accept queue) within the connect batch, so a server that accepts
  // slowly (mosquitto: backlog 100) drops no SYN (each costs a retransmit after 1 s, 3 s...).
  void Pace() {
    const long queued = NotAccepted(o_.port, false);
    opened_since_poll_.store(0, std::memory_order_relaxed);
    queued_.store(queued < 0 ? 0 : queued, std::memory_order_relaxed);
    for (Lane& lane : lanes_) {
      if (lane.clients.empty()) continue;
      Lane* lp = &lane;
      asio::post(lane.clients.front()->thread().io(), [this, lp] { PumpConnect(*lp); });
    }
  }

  void PumpConnect(Lane& lane) {
    if (!lane.connecting) return;
    while (!lane.done && lane.inflight + Unaccepted() < lane.connect_limit &&
           lane.next < lane.clients.size() &&
           NowNs() < stop_ns_.load(std::memory_order_relaxed)) {
      Client* c = lane.clients[lane.next++];
      state_[c->index()] = St::kConnecting;
      ++lane.inflight;
      c->Start(h_.server());
    }
    Done(lane);
  }

  void PumpLogin(Lane& lane) {
    while (!lane.done && lane.inflight < lane.login_limit && lane.next < lane.clients.size()) {
      const int64_t now = NowNs();
      if (now >= stop_ns_.load(std::memory_order_relaxed)) break;
      Client* c = lane.clients[lane.next++];
      St& s = state_[c->index()];
      if (s != St::kOpen) continue;
      if (!c->is_open()) {
        s = St::kDead;
        lost_.fetch_add(1, std::memory_order_relaxed);
        c->stats().Error("closed before its login");
        continue;
      }
      s = St::kLoggingIn;
      sent_ns_[c->index()] = now;
      lane.first_send = std::min(lane.first_send, now);
      ++lane.inflight;
      c->Login();
    }
    Done(lane);
  }

  // Until the server has accepted every connection (so no login waits in its accept queue).
  void WaitAccepted() {
    const int64_t deadline = NowNs() + kAcceptWaitNs;
    bool waited = false;
    while (NotAccepted(o_.port, true) > 0 && NowNs() < deadline) {
      waited = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (waited) ++accept_waits_;
  }

  void CloseAll() {
    for (Lane& lane : lanes_) {
      if (lane.clients.empty()) continue;
      lane.clients.front()->thread().RunSync([&] {
        for (Client* c : lane.clients) {
          c->Close();
          state_[c->index()] = St::kIdle;
        }
      });
    }
  }

  Harness& h_;
  const Options& o_;
  std::vector<Lane> lanes_;
  std::vector<St> state_;         // by client index, on the client's thread
  std::vector<int64_t> sent_ns_;  // by client index: when its login was sent
  bool measured_ = false;         // set before a login phase starts
  std::atomic<int64_t> stop_ns_{0};
  std::atomic<size_t> lanes_done_{0};
  std::atomic<uint64_t> progress_{0};
  std::atomic<uint64_t> opened_{0};
  std::atomic<long> queued_{0};
  std::atomic<size_t> opened_since_poll_{0};
  size_t active_lanes_ = 1;  // lanes with clients
  std::atomic<uint64_t> answered_{0};
  std::atomic<uint64_t> connect_errors_{0};
  std::atomic<uint64_t> login_errors_{0};
  std::atomic<uint64_t> lost_{0};
  std::atomic<uint64_t> timeouts_{0};
  std::string abort_;
  uint64_t rounds_ = 0;
  uint64_t logins_ = 0;
  uint64_t connected_ = 0;
  uint64_t accept_waits_ = 0;
  double round_min_ = 0;  // logins/s of the slowest and the fastest measured round
  double round_max_ = 0;
  int64_t login_ns_ = 0;
  int64_t connect_ns_ = 0;
};

int RunChurn(const Options& o, RunResult* r) {
  Harness h(o);
  LoginRun run(h);
  run.CreateClients();
  h.StartThreads();
  const int64_t start = NowNs() + static_cast<int64_t>(o.warmup * 1e9);
  g_run.measure_start_ns.store(start);
  g_run.measure_end_ns.store(start + static_cast<int64_t>(o.seconds * 1e9));
  for (auto& c : h.clients()) {
    Client* cp = c.get();
    asio::post(cp->thread().io(), [cp, &h] { cp->Start(h.server()); });
  }
  SleepUntil(g_run.measure_end_ns.load());
  g_run.stopping.store(true);
  h.Shutdown(false);
  *r = h.NewResult();
  r->Param("concurrency", o.concurrency);
  if (o.threads > 1) r->Param("threads", o.threads);
  r->seconds = o.seconds;
  r->unit = "logins/s";
  r->rate = static_cast<double>(h.Sum(&ThreadStats::logins)) / o.seconds;
  h.MergeInto(r, false, false, true);
  r->errors = h.Errors();
  if (!h.FirstError().empty()) r->note = "first error: " + h.FirstError();
  if (h.Sum(&ThreadStats::logins) == 0) {
    std::fprintf(stderr, "im-bench: no login succeeded: %s\n", h.FirstError().c_str());
    return 1;
  }
  return 0;
}


int RunEstablished(const Options& o, RunResult* r) {
  Harness h(o);
  EstablishedRun run(h);
  run.CreateClients();
  h.StartThreads();
  run.Run();
  g_run.stopping.store(true);
  h.Shutdown(false);
  *r = h.NewResult();
  run.Fill(r);
  if (run.logins() == 0) {
    std::fprintf(stderr, "im-bench: no login succeeded in a measured round: %s\n",
                 r->note.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int RunLogin(const Options& o, RunResult* r) {
  return o.login_mode == "established" ? RunEstablished(o, r) : RunChurn(o, r);
}

}  // namespace imbench
