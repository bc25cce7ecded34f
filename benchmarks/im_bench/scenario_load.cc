// The load scenarios: chat (sender -> receiver pairs), group (senders -> one group, every
// online member receives), fairness (a group flood, and a separate 1:1 probe pair whose
// latencies are the figure) and tenant-flood (a probe pair of tenant B, alone and then while
// tenant A floods 1:1 and a group). login is in scenario_login.cc.
#include <cmath>
#include <cstdio>
#include <thread>

#include "redis_stats.h"
#include "scenario.h"

namespace imbench {

namespace {

// ---- chat and group ----

constexpr uint32_t kSlots = 4096;       // in-process completion slots per sender
constexpr int kRateCap = 1024;          // rate mode: most messages in flight per sender
constexpr int64_t kStallNs = 3'000'000'000;
// Past this many members the ids are short (a run tag, "m", base36 index), so that a
// group.create carrying every member still fits in one 64 KiB frame (5,000 members: 45 KB).
constexpr int kShortIdMembers = 3000;
// fairness: how long the end of a run waits for the probe messages still in flight.
constexpr double kProbeDrainS = 15;

class ChatRun final : public ClientEvents {
 public:
  struct Slot {
    std::atomic<uint64_t> seq{UINT64_MAX};
    std::atomic<int> remaining{0};
  };
  struct Sender {
    Client* client = nullptr;
    std::string to;
    bool group = false;  // `to` is a group id
    uint32_t idx = 0;
    uint64_t next_seq = 0;
    uint64_t scheduled = 0;
    int64_t t0 = INT64_MAX;  // rate mode: when message 0 is due
    int inflight = 0;
    int64_t last_progress_ns = 0;
    std::unique_ptr<Slot[]> slots;
    std::string payload;  // built on the sender's thread
  };

  // tenant-flood: `phase` prefixes the user and group ids of this phase (each phase has its
  // own users), and `flood` tells whether tenant A's flood runs (else the probe pair alone).
  ChatRun(Harness& h, bool group, const std::string& phase = "", bool flood = true)
      : h_(h),
        o_(h.options()),
        group_(group),
        fairness_(h.options().scenario == "fairness"),
        tenant_flood_(h.options().scenario == "tenant-flood"),
        probe_(fairness_ || tenant_flood_),
        flood_(flood),
        ids_(RunId() + phase) {}

  // Builds clients and senders; returns an error text or "".
  std::string Build() {
    const Options& o = o_;
    if (o.rate > 0) rate_mode_ = true;
    if ((!group_ || tenant_flood_) && flood_) {
      for (int i = 0; i < o.pairs; ++i) {
        std::string sender = ids_ + "s" + std::to_string(i);
        std::string receiver = ids_ + "r" + std::to_string(i);
        // A pair shares a thread: completions tracked in-process stay on it.
        ClientConfig sc;
        sc.user = sender;
        sc.token = h_.Token(sender);
        AddSender(h_.AddClient(static_cast<size_t>(i), this, sc), receiver, false);
        ClientConfig rc;
        rc.user = receiver;
        rc.token = h_.Token(receiver);
        rc.auto_ack = true;
        if (o.target == "mqtt") rc.topics = {"u/" + receiver};
        h_.AddClient(static_cast<size_t>(i), this, rc);
      }
      receivers_per_msg_ = 1;
    }
    if (group_ && flood_) {
      const int members = o.members;
      // fairness: by default only the flooding sender is online (the members need not exist).
      const int online = std::min(o.online < 0 ? (fairness_ ? o.senders : members) : o.online,
                                  members);
      const int senders = std::min(o.senders, online);
      online_ = online;
      if (online < (fairness_ ? 1 : 2)) return "group needs at least 2 online members";
      gid_ = ids_ + "g";
      const std::string tag = RunId().substr(RunId().size() - 2);
      for (int i = 0; i < members; ++i) {
        member_ids_.push_back(members > kShortIdMembers
                                  ? tag + "m" + Base36(static_cast<uint64_t>(i))
                                  : ids_ + "m" + std::to_string(i));
      }
      for (int i = 0; i < online; ++i) {
        ClientConfig c;
        c.user = member_ids_[static_cast<size_t>(i)];
        c.token = h_.Token(c.user);
        c.auto_ack = true;
        // MQTT senders publish only (as in im, a sender's own session gets no copy).
        if (o.target == "mqtt" && i >= senders) c.topics = {"g/" + gid_};
        if (o.target == "ceiling") c.topics = {gid_};
        Client* client = h_.AddClient(static_cast<size_t>(i), this, c);
        if (i < senders) AddSender(client, gid_, true);
        if (i == 0) group_owner_ = client;
      }
      receivers_per_msg_ = o.target == "mqtt" ? online - senders : online - 1;
    }
    if (probe_) {
      // The probe pair: its own users, on thread 0, outside the group (tenant-flood: in tenant
      // B).
      ClientConfig pc;
      pc.user = ids_ + "ps";
      pc.token = tenant_flood_ ? h_.TokenB(pc.user) : h_.Token(pc.user);
      probe_sender_ = h_.AddClient(0, this, pc);
      ClientConfig rc;
      rc.user = ids_ + "pr";
      rc.token = tenant_flood_ ? h_.TokenB(rc.user) : h_.Token(rc.user);
      rc.auto_ack = true;
      probe_receiver_ = h_.AddClient(0, this, rc);
    }
    in_process_ = !h_.clients().front()->AckFreesWindow();
    for (auto& s : senders_) {
      if (in_process_) s.slots = std::make_unique<Slot[]>(kSlots);
    }
    sender_of_.assign(h_.clients().size(), -1);
    if (probe_) probe_timer_ = std::make_unique<asio::steady_timer>(h_.thread(0).io());
    for (auto& s : senders_) sender_of_[s.client->index()] = static_cast<int>(s.idx);
    // Per-thread stall detection and (rate mode) pacing.
    for (size_t t = 0; t < h_.thread_count(); ++t) {
      ThreadCtx* thread = &h_.thread(t);
      thread->tickers.push_back([this, thread](int64_t now) { CheckStalls(*thread, now); });
      pacers_.push_back(std::make_unique<asio::steady_timer>(thread->io()));
    }
    return "";
  }

  // Creates the im group (client 0 is its owner). Returns an error text or "".
  std::string CreateImGroup() {
    Client* owner = group_owner_;
    if (!h_.StartClients({owner}, 1, SetupSeconds(1))) {
      return "the group owner could not log in: " + h_.start_error();
    }
    std::string members = "[";
    for (size_t i = 1; i < member_ids_.size(); ++i) {
      if (i > 1) members += ',';
      members += "\"" + member_ids_[i] + "\"";
    }
    members += "]";
    std::string body = "{\"name\":\"bench\",\"gid\":\"" + gid_ + "\",\"members\":" + members + "}";
    if (body.size() > 60000) return "the member list (" + std::to_string(body.size()) +
                                    " bytes) does not fit in one frame; use fewer --members";
    std::atomic<int> state{0};
    std::string answer;
    auto* im = static_cast<ImClient*>(owner);
    owner->thread().RunSync([&] {
      im->Request("group.create", body, [&](std::string_view frame) {
        answer.assign(frame.data(), frame.size());
        state.store(1);
      });
    });
    if (!h_.WaitFor(30, [&] { return state.load() == 1; })) return "group.create got no response";
    if (IntAfter(answer, "\"code\":") != 0) return "group.create refused: " + answer.substr(0, 300);
    return "";
  }

  std::string Setup() {
    std::vector<Client*> rest;
    if (group_owner_ != nullptr && (o_.target == "im-tcp" || o_.target == "im-ws")) {
      std::string err = CreateImGroup();
      if (!err.empty()) return err;
      for (auto& c : h_.clients()) {
        if (c.get() != group_owner_) rest.push_back(c.get());
      }
    } else {
      for (auto& c : h_.clients()) rest.push_back(c.get());
    }
    if (!h_.StartClients(rest, kConnectBatch, SetupSeconds(rest.size()))) return h_.start_error();
    return "";
  }

  void Start() {
    if (rate_mode_) interval_ns_ = 1e9 * static_cast<double>(senders_.size()) / o_.rate;
    for (auto& s : senders_) {
      Sender* sp = &s;
      asio::post(s.client->thread().io(), [this, sp] {
        sp->last_progress_ns = NowNs();
        if (rate_mode_) {
          // Senders are spread evenly over the interval between two messages.
          sp->t0 = NowNs() + static_cast<int64_t>(1e9 / o_.rate * sp->idx);
        } else {
          for (int i = 0; i < o_.window; ++i) SendOne(*sp, NowNs());
        }
      });
    }
    if (rate_mode_) {
      for (size_t t = 0; t < h_.thread_count(); ++t) {
        asio::post(h_.thread(t).io(), [this, t] { Pace(t); });
      }
    }
    if (probe_) {
      asio::post(h_.thread(0).io(), [this] {
        probe_next_ns_ = NowNs();
        Probe();
      });
    }
  }

  // After the measured interval: waits until deliveries stop arriving (at most 3 s).
  void Drain() {
    if (probe_) {
      // Every probe message is waited for (acked and pushed), or the slowest ones, those a
      // flood holds up longest, would be missing from the figures.
      h_.WaitFor(kProbeDrainS, [this] {
        return probe_done_.load() == 2 * probe_sent_.load();
      });
      return;
    }
    uint64_t last = h_.DeliveredTotal();
    int64_t quiet_since = NowNs();
    const int64_t deadline = NowNs() + 3'000'000'000;
    while (NowNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      uint64_t now_delivered = h_.DeliveredTotal();
      if (now_delivered != last) {
        last = now_delivered;
        quiet_since = NowNs();
      } else if (NowNs() - quiet_since > 300'000'000) {
        break;
      }
    }
  }

  void Fill(RunResult* r) {
    const Options& o = o_;
    r->mode = rate_mode_ ? (o.sweep ? "sweep" : "rate") : "window";
    if (tenant_flood_) {
      r->mode = flood_ ? "flood" : "baseline";
      r->Param("pairs", o.pairs);
    }
    if (group_) {
      r->Param("members", o.members);
      r->Param("online", online_);
      r->Param("senders", tenant_flood_ ? (flood_ ? o.senders : 0)
                                        : static_cast<double>(senders_.size()));
    } else {
      r->Param("pairs", o.pairs);
    }
    if (rate_mode_) {
      r->Param("target_rate", o.rate);
    } else {
      r->Param("window", o.window);
    }
    r->Param("body", o.body);
    if (o.target == "mqtt") r->Param("qos", o.qos);
    if (o.threads > 1) r->Param("threads", o.threads);
    r->seconds = o.seconds;
    r->unit = "deliveries/s";
    r->rate = static_cast<double>(h_.Sum(&ThreadStats::delivered)) / o.seconds;
    uint64_t probe_bad = 0;  // probe sends refused or never answered
    if (probe_) {
      // The figure is the flood's sends/s; the latencies are the probe pair's alone:
      // send -> push (delivery) and send -> ack.
      r->Param("probe_interval_ms", o.probe_interval_ms);
      r->unit = "flood sends/s";
      r->rate = static_cast<double>(h_.Sum(&ThreadStats::acked)) / o.seconds;
      r->has_latency = true;
      r->latency_name = "delivery";
      r->latency.Merge(probe_push_);
      r->has_ack = true;
      r->ack.Merge(probe_ack_);
      // A probe message sent in the measured interval that never got its ack (or push) counts
      // with the time it waited until the end, and as an error.
      const int64_t end = NowNs();
      uint64_t acked = 0, pushed = 0, missing = 0;
      for (size_t i = 0; i < probe_sent_at_.size(); ++i) {
        const bool in_window = g_run.InWindow(probe_sent_at_[i]);
        if (probe_state_[i] & kProbeAcked) {
          ++acked;
        } else if (in_window) {
          r->ack.Record(end - probe_sent_at_[i]);
          ++missing;
        }
        if (probe_state_[i] & kProbePushed) {
          ++pushed;
        } else if (in_window) {
          r->latency.Record(end - probe_sent_at_[i]);
          ++missing;
        }
      }
      r->extra.emplace_back("probe_sent", static_cast<double>(probe_sent_at_.size()));
      r->extra.emplace_back("probe_acked", static_cast<double>(acked));
      r->extra.emplace_back("probe_pushed", static_cast<double>(pushed));
      r->errors += missing + probe_errors_;
      probe_bad = missing + probe_errors_;
    } else {
      h_.MergeInto(r, true, !in_process_ || o.target == "ceiling", false);
    }
    const uint64_t sent = h_.Sum(&ThreadStats::sent_total);
    const uint64_t acked = h_.Sum(&ThreadStats::acked_total);
    const uint64_t delivered = h_.DeliveredTotal();
    const uint64_t expected = (in_process_ ? sent : acked) * receivers_per_msg_;
    r->errors = h_.Errors() + stalled_;
    if (tenant_flood_) {
      // Tenant A's refused sends are the point of its limit, not errors: the errors are the
      // probe pair's.
      r->errors = probe_bad;
      r->unit = "flood sends/s taken";
      r->rate = static_cast<double>(flood_taken_.load()) / o.seconds;
      r->extra.emplace_back("flood_refused", static_cast<double>(flood_refused_.load()));
    }
    r->extra.emplace_back("sends_per_s",
                          static_cast<double>(h_.Sum(&ThreadStats::acked)) / o.seconds);
    r->extra.emplace_back("sent", static_cast<double>(sent));
    r->extra.emplace_back("acked", static_cast<double>(acked));
    r->extra.emplace_back("delivered_total", static_cast<double>(delivered));
    r->extra.emplace_back("receivers_per_message", receivers_per_msg_);
    std::string note;
    if (delivered < expected && !tenant_flood_) {  // tenant-flood: A's refused sends count too
      note += std::to_string(expected - delivered) + " of " + std::to_string(expected) +
              " deliveries missing at the end; ";
    }
    if (skipped_ > 0) {
      note += std::to_string(skipped_) + " scheduled sends skipped (" +
              std::to_string(kRateCap) + " in flight per sender); ";
    }
    if (stalled_ > 0) note += std::to_string(stalled_) + " sends never completed; ";
    if (!h_.FirstError().empty()) note += "first error: " + h_.FirstError();
    r->note = note;
  }

  // ClientEvents
  void OnReady(Client&) override {}

  void OnFailed(Client& c, const std::string& why) override {
    if (g_run.stopping.load(std::memory_order_relaxed)) return;
    c.stats().Error(c.ready() ? "connection lost: " + why : why);
  }

  void OnChat(Client& c, std::string_view payload) override {
    int64_t sent_ns = 0;
    uint32_t sender = 0;
    uint64_t seq = 0;
    if (!ParsePayload(payload, &sent_ns, &sender, &seq)) return;
    const int64_t now = NowNs();
    if (&c == probe_receiver_) {  // on thread 0, as the probe sender
      if (seq < probe_state_.size() && !(probe_state_[seq] & kProbePushed)) {
        probe_state_[seq] |= kProbePushed;
        probe_done_.fetch_add(1);
        if (g_run.InWindow(sent_ns)) probe_push_.Record(now - sent_ns);
      }
      return;
    }
    ThreadStats& st = c.stats();
    st.delivered_total.fetch_add(1, std::memory_order_relaxed);
    if (g_run.InWindow(now)) {
      st.delivered++;
      st.delivery.Record(now - sent_ns);
    }
    if (!in_process_ || sender >= senders_.size()) return;
    Sender& s = senders_[sender];
    Slot& slot = s.slots[seq % kSlots];
    if (slot.seq.load(std::memory_order_acquire) != seq) return;
    if (slot.remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (s.client->thread().on_thread()) {
      Complete(s);
    } else {
      asio::post(s.client->thread().io(), [this, &s] { Complete(s); });
    }
  }

  void OnSendDone(Client& c, uint64_t tag, bool ok, int64_t sent_ns) override {
    const int64_t now = NowNs();
    if (&c == probe_sender_) {
      if (tag < probe_state_.size() && !(probe_state_[tag] & kProbeAcked)) {
        probe_state_[tag] |= kProbeAcked;
        probe_done_.fetch_add(1);
        if (!ok) ++probe_errors_;
        if (g_run.InWindow(sent_ns)) probe_ack_.Record(now - sent_ns);
      }
      return;
    }
    if (!ok) flood_refused_.fetch_add(1, std::memory_order_relaxed);
    if (ok && g_run.InWindow(now)) flood_taken_.fetch_add(1, std::memory_order_relaxed);
    ThreadStats& st = c.stats();
    st.acked_total++;
    if (g_run.InWindow(now)) {
      st.acked++;
      st.ack.Record(now - sent_ns);
    }
    if (in_process_) return;
    int idx = sender_of_[c.index()];
    if (idx >= 0) Complete(senders_[static_cast<size_t>(idx)]);
  }

 private:
  void AddSender(Client* c, std::string to, bool group) {
    Sender s;
    s.client = c;
    s.to = std::move(to);
    s.group = group;
    s.idx = static_cast<uint32_t>(senders_.size());
    senders_.push_back(std::move(s));
  }

  void SendOne(Sender& s, int64_t sent_ns) {
    const uint64_t seq = s.next_seq++;
    if (in_process_) {
      Slot& slot = s.slots[seq % kSlots];
      slot.remaining.store(receivers_per_msg_, std::memory_order_relaxed);
      slot.seq.store(seq, std::memory_order_release);
    }
    BuildPayload(&s.payload, sent_ns, s.idx, seq, static_cast<size_t>(o_.body));
    s.inflight++;
    s.client->SendChat(s.to, s.group, s.payload, seq, sent_ns);
  }

  void Complete(Sender& s) {
    if (s.inflight > 0) s.inflight--;
    s.last_progress_ns = NowNs();
    if (!rate_mode_ && !g_run.stopping.load(std::memory_order_relaxed) && s.client->is_open()) {
      SendOne(s, NowNs());
    }
  }

  void Pace(size_t t) {
    if (g_run.stopping.load(std::memory_order_relaxed)) return;
    const int64_t now = NowNs();
    for (auto& s : senders_) {
      if (&s.client->thread() != &h_.thread(t) || now < s.t0 || !s.client->is_open()) continue;
      const uint64_t due =
          static_cast<uint64_t>(static_cast<double>(now - s.t0) / interval_ns_) + 1;
      while (s.scheduled < due) {
        const int64_t at = s.t0 + static_cast<int64_t>(static_cast<double>(s.scheduled) * interval_ns_);
        ++s.scheduled;
        if (s.inflight >= kRateCap) {
          ++skipped_;
          continue;
        }
        SendOne(s, at);
      }
    }
    auto& timer = *pacers_[t];
    timer.expires_after(std::chrono::microseconds(250));
    timer.async_wait([this, t](const asio::error_code& ec) {
      if (!ec) Pace(t);
    });
  }

  // fairness: one probe message every probe_interval_ms, whatever is still in flight (a slow
  // ack shows as latency, never as fewer probes).
  void Probe() {
    if (g_run.stopping.load(std::memory_order_relaxed) || !probe_sender_->is_open()) return;
    const int64_t now = NowNs();
    if (now >= probe_next_ns_) {
      const uint64_t seq = probe_sent_at_.size();
      probe_sent_at_.push_back(probe_next_ns_);
      probe_state_.push_back(0);
      BuildPayload(&probe_payload_, probe_next_ns_, UINT32_MAX, seq,
                   static_cast<size_t>(o_.body));
      probe_sender_->SendChat(probe_receiver_->config().user, false, probe_payload_, seq,
                              probe_next_ns_);
      probe_sent_.fetch_add(1);
      probe_next_ns_ += static_cast<int64_t>(o_.probe_interval_ms) * 1'000'000;
    }
    probe_timer_->expires_after(std::chrono::nanoseconds(std::max<int64_t>(
        probe_next_ns_ - NowNs(), 0)));
    probe_timer_->async_wait([this](const asio::error_code& ec) {
      if (!ec) Probe();
    });
  }

  void CheckStalls(ThreadCtx& thread, int64_t now) {
    for (auto& s : senders_) {
      if (&s.client->thread() != &thread || s.inflight == 0) continue;
      if (now - s.last_progress_ns < kStallNs) continue;
      if (!g_run.stopping.load(std::memory_order_relaxed)) {
        stalled_ += static_cast<uint64_t>(s.inflight);
      }
      if (in_process_) {
        for (uint32_t i = 0; i < kSlots; ++i) s.slots[i].seq.store(UINT64_MAX);
      }
      const int lost = s.inflight;
      s.inflight = 0;
      s.last_progress_ns = now;
      if (!rate_mode_ && !g_run.stopping.load() && s.client->is_open()) {
        for (int i = 0; i < std::min(lost, o_.window); ++i) SendOne(s, now);
      }
    }
  }

  Harness& h_;
  const Options& o_;
  const bool group_;
  const bool fairness_;
  const bool tenant_flood_;
  const bool probe_;  // fairness or tenant-flood: the probe pair runs
  const bool flood_;
  const std::string ids_;  // prefix of this run's user and group ids
  bool rate_mode_ = false;
  bool in_process_ = false;
  int receivers_per_msg_ = 1;
  int online_ = 0;  // group members logged in
  double interval_ns_ = 0;
  std::string gid_;
  Client* group_owner_ = nullptr;  // the group's first member, its creator (im targets)
  std::vector<std::string> member_ids_;
  std::vector<Sender> senders_;
  std::vector<int> sender_of_;
  std::vector<std::unique_ptr<asio::steady_timer>> pacers_;
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> stalled_{0};
  std::atomic<uint64_t> flood_refused_{0};  // sends answered with an error (not the probe's)
  std::atomic<uint64_t> flood_taken_{0};    // sends stored in the measured interval
  // fairness and tenant-flood: the probe pair, on thread 0 (only that thread touches these).
  Client* probe_sender_ = nullptr;
  Client* probe_receiver_ = nullptr;
  std::unique_ptr<asio::steady_timer> probe_timer_;
  std::string probe_payload_;
  int64_t probe_next_ns_ = 0;
  static constexpr uint8_t kProbeAcked = 1, kProbePushed = 2;
  std::vector<int64_t> probe_sent_at_;  // by probe seq: the scheduled send time
  std::vector<uint8_t> probe_state_;    // by probe seq: kProbeAcked | kProbePushed
  uint64_t probe_errors_ = 0;           // error responses to probe sends
  std::atomic<uint64_t> probe_sent_{0};  // read by the main thread while draining
  std::atomic<uint64_t> probe_done_{0};  // acks plus pushes received
  Histogram probe_push_, probe_ack_;
};

}  // namespace

namespace {

int RunPhase(const Options& o, bool group, const std::string& phase, bool flood, RunResult* r) {
  Harness h(o);
  ChatRun run(h, group, phase, flood);
  std::string err = run.Build();
  if (err.empty()) {
    h.StartThreads();
    err = run.Setup();
  }
  if (!err.empty()) {
    std::fprintf(stderr, "im-bench: %s: setup failed: %s\n", o.scenario.c_str(), err.c_str());
    h.Shutdown(false);  // before `run`, which the clients and tickers call, goes away
    return 1;
  }
  const int64_t start = NowNs() + static_cast<int64_t>(o.warmup * 1e9);
  g_run.measure_start_ns.store(start);
  g_run.measure_end_ns.store(start + static_cast<int64_t>(o.seconds * 1e9));
  run.Start();
  RedisCounters redis_before;
  RedisCounters redis_after;
  if (o.redis_port > 0) {
    SleepUntil(start);
    redis_before = ReadRedisCounters(o.host, o.redis_port);
  }
  SleepUntil(g_run.measure_end_ns.load());
  if (o.redis_port > 0) redis_after = ReadRedisCounters(o.host, o.redis_port);
  g_run.stopping.store(true);
  run.Drain();
  h.Shutdown(false);
  *r = h.NewResult();
  run.Fill(r);
  if (o.redis_port > 0) {
    AddRedisFigures(redis_before, redis_after, h.Sum(&ThreadStats::acked), r);
  }
  return 0;
}

}  // namespace

int RunChat(const Options& o, bool group, RunResult* r) { return RunPhase(o, group, "", true, r); }

int RunTenantFlood(const Options& o, RunResult* baseline, RunResult* flood) {
  if (int rc = RunPhase(o, true, "b", false, baseline); rc != 0) return rc;
  g_run.stopping.store(false);
  g_run.measure_start_ns.store(INT64_MAX);
  g_run.measure_end_ns.store(INT64_MAX);
  return RunPhase(o, true, "f", true, flood);
}

}  // namespace imbench
