// The state scenarios: sync (pull a backlog stored while offline) and idle (memory per idle
// logged-in connection, read from the server's /proc/PID/status).
#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "scenario.h"

namespace imbench {

namespace {

// ---- sync ----

class SyncRun final : public ClientEvents {
 public:
  explicit SyncRun(Harness& h) : h_(h), o_(h.options()) {}

  void Build() {
    const std::string s = RunId() + "ss";
    const std::string r = RunId() + "sr";
    receiver_user_ = r;
    ClientConfig sc;
    sc.user = s;
    sc.token = h_.Token(s);
    sc.qos = 1;
    sender_ = h_.AddClient(0, this, sc);
    ClientConfig rc;
    rc.user = r;
    rc.token = h_.Token(r);
    rc.qos = 1;
    rc.clean_session = false;
    if (o_.target == "mqtt") rc.topics = {"u/" + r};
    receiver_ = h_.AddClient(0, this, rc);
  }

  // mqtt: subscribe with a persistent session, then go away.
  std::string PrepareMqttSession() {
    if (!h_.StartClients({receiver_}, 1, SetupSeconds(1))) return "subscriber: " + h_.start_error();
    receiver_->thread().RunSync([&] { receiver_->Goodbye(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    receiver_->thread().RunSync([&] { receiver_->Close(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    receiver_->mutable_config().topics.clear();  // the session keeps the subscription
    return "";
  }

  std::string Fill() {
    if (!h_.StartClients({sender_}, 1, SetupSeconds(1))) return "sender: " + h_.start_error();
    const int window = std::max(o_.window, 64);
    sender_->thread().RunSync([&] {
      for (int i = 0; i < window && sent_ < static_cast<uint64_t>(o_.backlog); ++i) SendNext();
    });
    const double timeout = 60 + o_.backlog / 1000.0;
    if (!h_.WaitFor(timeout, [&] { return acked_.load() >= static_cast<uint64_t>(o_.backlog); })) {
      return "only " + std::to_string(acked_.load()) + " of " + std::to_string(o_.backlog) +
             " backlog messages were acknowledged: " + h_.FirstError();
    }
    return "";
  }

  std::string Pull() {
    receiver_->thread().RunSync([&] {
      t0_ = NowNs();
      last_progress_ = t0_;
      pulling_ = true;
      receiver_->Start(h_.server());
    });
    const double timeout = 60 + o_.backlog / 1000.0;
    // MQTT has no end marker: stop when every message came, or nothing came for 5 s.
    h_.WaitFor(timeout, [&] {
      return done_.load() ||
             (o_.target == "mqtt" && NowNs() - last_progress_.load() > 5'000'000'000);
    });
    if (!done_.load() && pulled_.load() == 0) return "nothing pulled: " + h_.FirstError();
    if (!done_.load() && o_.target != "mqtt") {
      return "the pull did not finish: " + std::to_string(pulled_.load()) + " of " +
             std::to_string(o_.backlog) + " messages; " + h_.FirstError();
    }
    if (!done_.load()) t1_ = last_progress_.load();
    return "";
  }

  void Fill(RunResult* r) {
    r->Param("backlog", o_.backlog);
    r->Param("body", o_.body);
    const double secs = static_cast<double>(t1_ - t0_) / 1e9;
    r->seconds = secs;
    r->unit = "messages/s";
    r->rate = secs > 0 ? static_cast<double>(pulled_.load()) / secs : 0;
    r->errors = h_.Errors();
    r->extra.emplace_back("pulled", static_cast<double>(pulled_.load()));
    r->extra.emplace_back("pull_ms", secs * 1000);
    r->extra.emplace_back("pages", static_cast<double>(pages_));
    std::string note;
    if (pulled_.load() < static_cast<uint64_t>(o_.backlog)) {
      note += "pulled " + std::to_string(pulled_.load()) + " of " + std::to_string(o_.backlog) +
              "; ";
    }
    if (gap_) note += "the inbox reported a gap (retention trimmed it); ";
    if (o_.target == "mqtt" && !session_present_) note += "CONNACK said no session present; ";
    if (!h_.FirstError().empty()) note += "first error: " + h_.FirstError();
    r->note = note;
  }

  // ClientEvents
  void OnReady(Client& c) override {
    if (&c != receiver_ || !pulling_) return;
    if (o_.target == "mqtt") {
      session_present_ = static_cast<MqttClient&>(c).session_present();
      return;
    }
    SyncFrom(0);
  }

  void OnFailed(Client& c, const std::string& why) override {
    if (g_run.stopping.load()) return;
    if (&c == receiver_ && !pulling_ && c.ready()) return;  // the server closing after DISCONNECT
    c.stats().Error(c.ready() ? "connection lost: " + why : why);
  }

  void OnChat(Client& c, std::string_view) override {
    if (&c != receiver_ || !pulling_ || o_.target != "mqtt") return;
    const int64_t now = NowNs();
    last_progress_.store(now);
    if (pulled_.fetch_add(1) + 1 == static_cast<uint64_t>(o_.backlog)) {
      t1_ = now;
      done_.store(true);
    }
  }

  void OnSendDone(Client& c, uint64_t, bool, int64_t) override {
    if (&c != sender_) return;
    acked_.fetch_add(1);
    if (sent_ < static_cast<uint64_t>(o_.backlog)) SendNext();
  }

 private:
  void SendNext() {
    const int64_t now = NowNs();
    BuildPayload(&payload_, now, 0, sent_, static_cast<size_t>(o_.body));
    sender_->SendChat(receiver_user_, false, payload_, sent_, now);
    ++sent_;
  }

  // im: chat.sync pages of 500 from `after` until `more` is false.
  void SyncFrom(uint64_t after) {
    auto* im = static_cast<ImClient*>(receiver_);
    im->Request("chat.sync", "{\"after\":" + std::to_string(after) + ",\"limit\":500}",
                [this, im](std::string_view frame) {
                  ++pages_;
                  rapidjson::Document d;
                  d.Parse(frame.data(), frame.size());
                  if (d.HasParseError() || !d.IsObject() || !d.HasMember("code") ||
                      d["code"].GetInt() != 0 || !d.HasMember("body")) {
                    im->stats().Error("chat.sync failed: " + std::string(frame.substr(0, 200)));
                    Finish(0);
                    return;
                  }
                  const auto& body = d["body"];
                  uint64_t last = 0;
                  for (const auto& m : body["messages"].GetArray()) {
                    last = m["seq"].GetUint64();
                    if (m.HasMember("body") && m["body"].IsString() &&
                        m["body"].GetStringLength() > 0 && m["body"].GetString()[0] == 'T') {
                      pulled_.fetch_add(1, std::memory_order_relaxed);
                    }
                  }
                  if (body.HasMember("gap") && body["gap"].GetBool()) gap_ = true;
                  if (body.HasMember("more") && body["more"].GetBool() && last > 0) {
                    SyncFrom(last);
                  } else {
                    Finish(last);
                  }
                });
  }

  void Finish(uint64_t last_seq) {
    t1_ = NowNs();
    last_progress_.store(t1_);
    // As a real client: acknowledge what was processed.
    if (last_seq > 0) static_cast<ImClient*>(receiver_)->Ack(last_seq);
    done_.store(true);
  }

  Harness& h_;
  const Options& o_;
  Client* sender_ = nullptr;
  Client* receiver_ = nullptr;
  std::string receiver_user_;
  std::string payload_;
  uint64_t sent_ = 0;
  std::atomic<uint64_t> acked_{0};
  bool pulling_ = false;
  bool gap_ = false;
  bool session_present_ = false;
  uint64_t pages_ = 0;
  int64_t t0_ = 0;
  int64_t t1_ = 0;
  std::atomic<int64_t> last_progress_{0};
  std::atomic<uint64_t> pulled_{0};
  std::atomic<bool> done_{false};
};

// ---- idle ----

class IdleEvents final : public ClientEvents {
 public:
  void OnReady(Client&) override {}
  void OnFailed(Client& c, const std::string& why) override {
    if (g_run.stopping.load()) return;
    c.stats().Error(c.ready() ? "connection lost: " + why : why);
  }
  void OnChat(Client&, std::string_view) override {}
  void OnSendDone(Client&, uint64_t, bool, int64_t) override {}
};

long VmRssKib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int RunSync(const Options& o, RunResult* r, std::string* skipped) {
  if (o.target == "ceiling") {
    *skipped = "sync does not apply to the ceiling server (it stores nothing)";
    return 0;
  }
  Harness h(o);
  SyncRun run(h);
  run.Build();
  h.StartThreads();
  std::string err;
  if (o.target == "mqtt") err = run.PrepareMqttSession();
  if (err.empty()) err = run.Fill();
  if (err.empty()) err = run.Pull();
  if (!err.empty()) {
    std::fprintf(stderr, "im-bench: sync: %s\n", err.c_str());
    h.Shutdown(false);  // before `run`, which the clients call, goes away
    return 1;
  }
  g_run.stopping.store(true);
  h.Shutdown(false);
  *r = h.NewResult();
  run.Fill(r);
  return 0;
}

int RunIdle(const Options& o, RunResult* r) {
  if (o.server_pid <= 0) {
    std::fprintf(stderr, "im-bench: idle needs --server-pid PID (the server's process id)\n");
    return 2;
  }
  const long before = VmRssKib(o.server_pid);
  if (before < 0) {
    std::fprintf(stderr, "im-bench: cannot read /proc/%d/status\n", o.server_pid);
    return 2;
  }
  Harness h(o);
  IdleEvents events;
  std::vector<Client*> all;
  for (int i = 0; i < o.connections; ++i) {
    ClientConfig c;
    c.user = RunId() + "i" + std::to_string(i);
    c.token = h.Token(c.user);
    all.push_back(h.AddClient(static_cast<size_t>(i), &events, c));
  }
  h.StartThreads();
  const int64_t t0 = NowNs();
  bool all_in = h.StartClients(all, kConnectBatch, SetupSeconds(all.size()));
  const double connect_s = static_cast<double>(NowNs() - t0) / 1e9;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long after = VmRssKib(o.server_pid);
  const uint64_t ready = h.Ready();
  g_run.stopping.store(true);
  h.Shutdown(false);
  *r = h.NewResult();
  r->Param("connections", o.connections);
  r->unit = "KiB/conn";
  r->seconds = connect_s;
  r->rate = ready > 0 ? static_cast<double>(after - before) / static_cast<double>(ready) : 0;
  r->errors = h.Errors();
  r->extra.emplace_back("logged_in", static_cast<double>(ready));
  r->extra.emplace_back("rss_before_kib", static_cast<double>(before));
  r->extra.emplace_back("rss_after_kib", static_cast<double>(after));
  r->extra.emplace_back("connect_s", connect_s);
  if (!all_in) r->note = h.start_error();
  if (ready == 0) {
    std::fprintf(stderr, "im-bench: idle: no connection logged in: %s\n", h.FirstError().c_str());
    return 1;
  }
  return 0;
}

}  // namespace imbench
