// im-bench: load generator for the im server (TCP and WebSocket), mosquitto (MQTT 3.1.1) and
// the bare ceiling server, on 127.0.0.1. See README.md beside this file.
//
//   im-bench <login|chat|group|fairness|tenant-flood|sync|idle>
//            --target im-tcp|im-ws|mqtt|ceiling --port P
//   im-bench report FILE.jsonl
//   im-bench runs NAME:FILE.jsonl ...
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "common.h"
#include "scenario.h"
#include "stats.h"

namespace imbench {
int RunReport(const std::string& path);
int RunRuns(const std::vector<std::string>& named_files);
}

namespace {

using imbench::Options;

void AddCommon(CLI::App* sub, Options* o) {
  sub->add_option("--target", o->target, "im-tcp, im-ws, mqtt or ceiling")
      ->required()
      ->check(CLI::IsMember({"im-tcp", "im-ws", "mqtt", "ceiling"}));
  sub->add_option("--port", o->port, "the server's port (im-ws: the HTTP port)");
  sub->add_option("--ports", o->ports,
                  "instead of --port, several servers (the nodes of a cluster), comma-separated: "
                  "client i connects to the (i mod N)-th (chat and group)")
      ->delimiter(',');
  sub->add_option("--redis-port", o->redis_port,
                  "chat and group: the redis-server of the nodes; reports its commands and round "
                  "trips per message over the measured interval");
  sub->add_option("--host", o->host, "the server's address (loopback only; default 127.0.0.1)");
  sub->add_option("--key", o->key, "im targets: the tenant's HS256 key in hex (imd's [keys])");
  sub->add_option("--tenant", o->tenant, "im targets: tenant of the minted tokens");
  sub->add_option("--ws-path", o->ws_path, "im-ws: the WebSocket path (default /ws)");
  sub->add_option("--seconds", o->seconds, "measured seconds (default 10)");
  sub->add_option("--warmup", o->warmup, "seconds of load before measuring (default 2)");
  sub->add_option("--json", o->json, "append the result as one JSON line to this file");
  sub->add_option("--label", o->label, "free text stored with the result");
  sub->add_option("--threads", o->threads, "client threads (default 1)");
}

// The load shape shared by chat and group: a window or a paced rate, the body size, MQTT QoS.
void AddLoadOptions(CLI::App* sub, Options* o) {
  sub->add_option("--window", o->window, "messages in flight per sender (default 16)");
  sub->add_option("--body", o->body, "message body bytes (default 100)");
  sub->add_option("--rate", o->rate, "total messages/s, paced evenly (instead of the window)");
  sub->add_option("--qos", o->qos, "mqtt: QoS 0 or 1 (default 1)");
}

bool IsLoopback(const std::string& host) {
  asio::error_code ec;
  auto a = asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

// A blocking connect to the server, so an unreachable server fails fast and clearly.
bool Probe(const std::string& host, int port, std::string* why) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  asio::error_code ec;
  s.connect(asio::ip::tcp::endpoint(asio::ip::make_address(host), static_cast<uint16_t>(port)),
            ec);
  if (ec) {
    *why = ec.message();
    return false;
  }
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
  return true;
}

void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Beyond every phase's own timeout, so a phase that times out reports why first.
double DeadlineSeconds(const Options& o) {
  using imbench::SetupSeconds;
  if (o.scenario == "sync") return 2 * (60 + o.backlog / 1000.0) + 3 * SetupSeconds(1) + 30;
  if (o.scenario == "idle") return SetupSeconds(static_cast<size_t>(o.connections)) + 30;
  // established: the last round's connects and logins in flight (each phase gives up after
  // 5 s without progress), its close, and setting up the first round.
  if (o.scenario == "login" && o.login_mode == "established") return o.warmup + o.seconds + 45;
  if (o.scenario == "login") return o.warmup + o.seconds + 30;
  if (o.scenario == "tenant-flood") {  // two runs: the probe alone, then with the flood
    const size_t clients = 2 * static_cast<size_t>(o.pairs) + 2 +
                           static_cast<size_t>(o.online < 0 ? o.members : o.online);
    return 2 * (o.warmup + o.seconds + 2 * SetupSeconds(clients) + 30 + 15) + 30;
  }
  size_t clients = o.scenario == "chat" ? 2 * static_cast<size_t>(o.pairs)
                                        : static_cast<size_t>(o.online < 0 ? o.members : o.online);
  double setup = SetupSeconds(clients) + (o.scenario != "chat" ? SetupSeconds(1) + 30 : 0);
  return o.warmup + o.seconds + setup + 30;
}

// Ends the process if the run overruns its deadline (a hung server must not hang the caller).
void StartWatchdog(double seconds, std::string what) {
  std::thread([seconds, what] {
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    std::fprintf(stderr, "im-bench: %s did not finish within its %.0f s deadline; giving up\n",
                 what.c_str(), seconds);
    std::fflush(stderr);
    _exit(3);
  }).detach();
}

// tenant-flood: both runs as rows, then tenant B's probe latencies alone and under the flood.
int PrintTenantFlood(const Options& o) {
  imbench::RunResult alone, flooded;
  if (int rc = imbench::RunTenantFlood(o, &alone, &flooded); rc != 0) return rc;
  imbench::PrintTableHeader();
  imbench::PrintTableRow(alone);
  imbench::PrintTableRow(flooded);
  std::printf("\ntenant %s's probe pair (one message every %d ms), alone and while tenant %s "
              "floods:\n",
              o.tenant_b.c_str(), o.probe_interval_ms, o.tenant.c_str());
  std::printf("%-10s %10s %10s %10s %10s %10s %10s\n", "ms", "ack p50", "ack p99", "ack max",
              "push p50", "push p99", "push max");
  auto row = [](const char* name, const imbench::RunResult& r) {
    std::printf("%-10s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", name,
                r.ack.Quantile(0.5) / 1e6, r.ack.Quantile(0.99) / 1e6, r.ack.max() / 1e6,
                r.latency.Quantile(0.5) / 1e6, r.latency.Quantile(0.99) / 1e6,
                r.latency.max() / 1e6);
  };
  row("alone", alone);
  row("flood", flooded);
  auto ratio = [](int64_t flood, int64_t base) {
    return base > 0 ? static_cast<double>(flood) / static_cast<double>(base) : 0.0;
  };
  std::printf("%-10s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", "ratio",
              ratio(flooded.ack.Quantile(0.5), alone.ack.Quantile(0.5)),
              ratio(flooded.ack.Quantile(0.99), alone.ack.Quantile(0.99)),
              ratio(flooded.ack.max(), alone.ack.max()),
              ratio(flooded.latency.Quantile(0.5), alone.latency.Quantile(0.5)),
              ratio(flooded.latency.Quantile(0.99), alone.latency.Quantile(0.99)),
              ratio(flooded.latency.max(), alone.latency.max()));
  if (!o.json.empty() && (!imbench::AppendJson(o.json, alone) ||
                          !imbench::AppendJson(o.json, flooded))) {
    return 1;
  }
  return 0;
}

int RunScenario(Options& o) {
  if (!IsLoopback(o.host)) {
    std::fprintf(stderr, "im-bench: --host must be a loopback address (127.0.0.1 or ::1)\n");
    return 2;
  }
  if (o.port == 0 && !o.ports.empty()) o.port = o.ports.front();
  for (int port : o.ports.empty() ? std::vector<int>{o.port} : o.ports) {
    if (port <= 0 || port > 65535) {
      std::fprintf(stderr, "im-bench: --port or --ports needed, each 1..65535\n");
      return 2;
    }
  }
  if (o.redis_port < 0 || o.redis_port > 65535) {
    std::fprintf(stderr, "im-bench: --redis-port must be 1..65535\n");
    return 2;
  }
  if (o.ports.size() > 1 && o.scenario != "chat" && o.scenario != "group") {
    std::fprintf(stderr, "im-bench: several --ports for chat and group only\n");
    return 2;
  }
  if (o.seconds <= 0 || o.warmup < 0 || o.threads < 1 || o.window < 1 || o.body < 24 ||
      o.body > 16000 || o.pairs < 1 || o.concurrency < 1 || o.members < 2 || o.senders < 1 ||
      o.backlog < 1 || o.connections < 1 || o.login_connections < 1 || o.rate < 0 ||
      (o.qos != 0 && o.qos != 1) || o.probe_interval_ms < 1 || (o.sweep && o.rate <= 0)) {
    std::fprintf(stderr,
                 "im-bench: bad flag value (seconds > 0, threads/window/pairs/concurrency/"
                 "senders/backlog/connections >= 1, members >= 2, body 24..16000, qos 0|1, "
                 "probe-interval-ms >= 1, --sweep needs --rate)\n");
    return 2;
  }
  if ((o.scenario == "fairness" || o.scenario == "tenant-flood") && o.target != "im-tcp" &&
      o.target != "im-ws") {
    std::fprintf(stderr, "im-bench: %s runs against im-tcp or im-ws only\n", o.scenario.c_str());
    return 2;
  }
  if (o.scenario == "tenant-flood" && (o.tenant_b.empty() || o.tenant_b == o.tenant)) {
    std::fprintf(stderr, "im-bench: tenant-flood needs --tenant-b, a tenant other than --tenant\n");
    return 2;
  }
  if (o.target == "im-tcp" || o.target == "im-ws") {
    std::string raw;
    if (o.key.empty() || !imbench::HexDecode(o.key, &raw) || raw.size() < 16) {
      std::fprintf(stderr, "im-bench: %s needs --key HEX (the tenant's key from imd's [keys])\n",
                   o.target.c_str());
      return 2;
    }
    if (!o.key_b.empty() && (!imbench::HexDecode(o.key_b, &raw) || raw.size() < 16)) {
      std::fprintf(stderr, "im-bench: --key-b must be a key in hex (at least 16 bytes)\n");
      return 2;
    }
  }
  std::string why;
  for (int port : o.ports.empty() ? std::vector<int>{o.port} : o.ports) {
    if (!Probe(o.host, port, &why)) {
      std::fprintf(stderr, "im-bench: cannot connect to %s:%d (%s): is the %s server running?\n",
                   o.host.c_str(), port, why.c_str(), o.target.c_str());
      return 2;
    }
  }
  imbench::Conn::SetWebSocketTarget(o.host + ":" + std::to_string(o.port), o.ws_path);
  StartWatchdog(DeadlineSeconds(o), o.scenario + " against " + o.target);

  imbench::RunResult result;
  int rc = 0;
  std::string skipped;
  if (o.scenario == "tenant-flood") return PrintTenantFlood(o);
  if (o.scenario == "login") {
    rc = imbench::RunLogin(o, &result);
  } else if (o.scenario == "chat") {
    rc = imbench::RunChat(o, false, &result);
  } else if (o.scenario == "group" || o.scenario == "fairness") {
    rc = imbench::RunChat(o, true, &result);
  } else if (o.scenario == "sync") {
    rc = imbench::RunSync(o, &result, &skipped);
  } else {
    rc = imbench::RunIdle(o, &result);
  }
  if (rc != 0) return rc;
  if (!skipped.empty()) {
    std::printf("%s %s: skipped: %s\n", o.target.c_str(), o.scenario.c_str(), skipped.c_str());
    return 0;
  }
  imbench::PrintTableHeader();
  imbench::PrintTableRow(result);
  if (!o.json.empty() && !imbench::AppendJson(o.json, result)) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::fprintf(stderr, "im-bench: libsodium failed to initialise\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit();

  CLI::App app{"im-bench: load generator for im, mosquitto and the ceiling server"};
  app.require_subcommand(1);
  Options o;

  auto* login = app.add_subcommand("login", "log in: connection churn or on open connections");
  AddCommon(login, &o);
  login->add_option("--mode", o.login_mode,
                    "churn: connect, log in, close, in a loop (default); established: rounds "
                    "of N open connections each logging in once")
      ->check(CLI::IsMember({"churn", "established"}));
  login->add_option("--concurrency", o.concurrency,
                    "churn: workers, each its own users (default 64); established: logins in "
                    "flight (default 256)");
  login->add_option("--connections", o.login_connections,
                    "established: connections opened per round (default 5000)");

  auto* chat = app.add_subcommand("chat", "1:1 messages from senders to receivers");
  AddCommon(chat, &o);
  chat->add_option("--pairs", o.pairs, "sender -> receiver pairs (default 50)");
  AddLoadOptions(chat, &o);
  chat->add_flag("--sweep", o.sweep,
                 "with --rate: a point of the fixed-rate sweep (chat@sweep in the report)");

  auto* group = app.add_subcommand("group", "senders to one group, every online member receives");
  AddCommon(group, &o);
  group->add_option("--members", o.members, "group members (default 1000)");
  group->add_option("--online", o.online, "members connected and logged in (default all)");
  group->add_option("--senders", o.senders, "online members that send (default 1)");
  AddLoadOptions(group, &o);

  auto* fairness = app.add_subcommand(
      "fairness", "one sender floods a big group while a separate 1:1 pair sends at a fixed pace");
  AddCommon(fairness, &o);
  fairness->add_option("--members", o.members, "group members (default 5000)");
  fairness->add_option("--online", o.online,
                       "members connected and logged in (default: the flooding sender alone)");
  fairness->add_option("--window", o.window, "flood messages in flight (default 16)");
  fairness->add_option("--body", o.body, "message body bytes (default 100)");
  fairness->add_option("--probe-interval-ms", o.probe_interval_ms,
                       "the probe pair sends one message every this many ms (default 20)");

  auto* flood = app.add_subcommand(
      "tenant-flood",
      "a 1:1 probe pair of tenant B at a fixed pace, alone and then while tenant A's pairs and "
      "a group send as fast as they can");
  AddCommon(flood, &o);
  flood->add_option("--tenant-b", o.tenant_b, "the probe pair's tenant")->required();
  flood->add_option("--key-b", o.key_b, "tenant B's HS256 key in hex (default: --key)");
  flood->add_option("--pairs", o.pairs, "tenant A's 1:1 pairs (default 50)");
  flood->add_option("--members", o.members, "tenant A's group members (default 100)");
  flood->add_option("--online", o.online, "group members logged in (default all)");
  flood->add_option("--senders", o.senders, "group members that send (default 1)");
  flood->add_option("--window", o.window, "flood messages in flight per sender (default 16)");
  flood->add_option("--body", o.body, "message body bytes (default 100)");
  flood->add_option("--probe-interval-ms", o.probe_interval_ms,
                    "the probe pair sends one message every this many ms (default 10)");

  auto* sync = app.add_subcommand("sync", "pull a backlog stored while offline");
  AddCommon(sync, &o);
  sync->add_option("--backlog", o.backlog, "messages waiting (default 20000)");
  sync->add_option("--window", o.window, "sends in flight while filling (at least 64)");
  sync->add_option("--body", o.body, "message body bytes (default 100)");

  auto* idle = app.add_subcommand("idle", "server memory per idle logged-in connection");
  AddCommon(idle, &o);
  idle->add_option("--connections", o.connections, "connections (default 10000)");
  idle->add_option("--server-pid", o.server_pid, "the server's process id")->required();

  std::string report_file;
  auto* report = app.add_subcommand("report", "summarise a JSON-lines file of results");
  report->add_option("file", report_file, "the file im-bench --json wrote")->required();

  std::vector<std::string> run_files;
  auto* runs = app.add_subcommand(
      "runs", "the target figures of several runs side by side, and their spread per binary");
  runs->add_option("files", run_files, "NAME:FILE.jsonl, one per run (NAME: the binary)")
      ->required();

  CLI11_PARSE(app, argc, argv);
  if (*report) return imbench::RunReport(report_file);
  if (*runs) return imbench::RunRuns(run_files);
  for (auto* sub : {login, chat, group, fairness, flood, sync, idle}) {
    if (*sub) o.scenario = sub->get_name();
  }
  if (*fairness && fairness->count("--members") == 0) o.members = 5000;
  if (*flood && flood->count("--members") == 0) o.members = 100;
  if (*flood && flood->count("--probe-interval-ms") == 0) o.probe_interval_ms = 10;
  if (*login && o.login_mode == "established" && login->count("--concurrency") == 0) {
    o.concurrency = 256;
  }
  return RunScenario(o);
}
