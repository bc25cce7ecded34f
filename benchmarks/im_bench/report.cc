// `im-bench report FILE.jsonl`: per scenario, each target's figures and its ratio to the mqtt
// and ceiling rows of the same scenario; then the performance targets, each met or missed.
// login has two tables, one per mode (churn, established); the logins/s target uses
// established. The fixed-rate sweep (chat@sweep) and fairness have tables of their own.
//
// `im-bench runs NAME:FILE ...`: the target figures of several files (one compare run each,
// NAME the imd binary it ran) side by side, and per binary their min, median and max.
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "stats.h"

namespace imbench {

namespace {

struct Row {
  std::string scenario;  // "login@churn", "login@established", "chat", "chat@rate", ...
  std::string target;    // "im-tcp", "mqtt qos1", ...
  std::string unit;
  std::string params;
  std::string note;
  double rate = 0;
  bool has_latency = false;
  double p50 = 0, p99 = 0, p999 = 0;  // microseconds
  bool has_ack = false;
  double ack99 = 0;
  double errors = 0;
  double members = 0;
  double online = -1;       // group, fairness
  double target_rate = 0;   // chat@rate, chat@sweep
  double max = 0;           // latency maximum (microseconds)
  double ack50 = 0, ack_max = 0;
  int cores = 0;
  double load1 = -1;
};

// The tables printed row by row; chat@sweep and fairness have tables of their own.
const char* kScenarioOrder[] = {"login@established", "login@churn", "chat", "chat@rate",
                                "group", "sync", "idle"};

// The table's heading.
std::string Title(const std::string& scenario) {
  if (scenario == "login@established") return "login, established: log in on open connections";
  if (scenario == "login@churn") return "login, churn: connect, log in, close";
  return scenario;
}
const char* kTargetOrder[] = {"im-tcp", "im-ws", "mqtt", "mqtt qos1", "mqtt qos0", "ceiling"};

std::string Ms(double us) {
  char text[32];
  std::snprintf(text, sizeof text, us < 10000 ? "%.3f" : "%.1f", us / 1000);
  return text;
}

// A count as an integer ("-" when unknown).
std::string Count(double v) { return v < 0 ? "-" : std::to_string(static_cast<long long>(v)); }

bool ReadRows(const std::string& path, std::vector<Row>* rows) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("scenario") || !d.HasMember("rate")) {
      std::fprintf(stderr, "im-bench report: %s:%d: not a result line, skipped\n", path.c_str(), n);
      continue;
    }
    Row r;
    r.scenario = d["scenario"].GetString();
    const std::string mode =
        d.HasMember("mode") && d["mode"].IsString() ? d["mode"].GetString() : "";
    if (mode == "rate" || mode == "sweep") r.scenario += "@" + mode;
    // Older files have no login mode: churn was the only one.
    if (r.scenario == "login") r.scenario += mode == "established" ? "@established" : "@churn";
    r.target = d["target"].GetString();
    if (d.HasMember("variant") && d["variant"].GetStringLength() > 0) {
      r.target += std::string(" ") + d["variant"].GetString();
    }
    r.unit = d["unit"].GetString();
    r.rate = d["rate"].GetDouble();
    r.errors = d["errors"].GetDouble();
    if (d.HasMember("note")) r.note = d["note"].GetString();
    if (d.HasMember("params") && d["params"].IsObject()) {
      for (auto& m : d["params"].GetObject()) {
        if (!r.params.empty()) r.params += ' ';
        std::string value;
        if (m.value.IsString()) {
          value = m.value.GetString();
        } else if (m.value.IsInt64()) {
          value = std::to_string(m.value.GetInt64());
        } else {
          value = Figure(m.value.GetDouble());
        }
        r.params += std::string(m.name.GetString()) + "=" + value;
        const std::string name = m.name.GetString();
        if (!m.value.IsNumber()) continue;
        if (name == "members") r.members = m.value.GetDouble();
        if (name == "online") r.online = m.value.GetDouble();
        if (name == "target_rate") r.target_rate = m.value.GetDouble();
      }
    }
    for (const char* key : {"delivery_us", "login_us"}) {
      if (d.HasMember(key) && d[key]["count"].GetUint64() > 0) {
        r.has_latency = true;
        r.p50 = d[key]["p50"].GetDouble();
        r.p99 = d[key]["p99"].GetDouble();
        r.p999 = d[key]["p999"].GetDouble();
        if (d[key].HasMember("max")) r.max = d[key]["max"].GetDouble();
      }
    }
    if (d.HasMember("ack_us") && d["ack_us"]["count"].GetUint64() > 0) {
      r.has_ack = true;
      r.ack99 = d["ack_us"]["p99"].GetDouble();
      r.ack50 = d["ack_us"]["p50"].GetDouble();
      if (d["ack_us"].HasMember("max")) r.ack_max = d["ack_us"]["max"].GetDouble();
    }
    if (d.HasMember("cores") && d["cores"].IsInt()) r.cores = d["cores"].GetInt();
    if (d.HasMember("load1") && d["load1"].IsNumber()) r.load1 = d["load1"].GetDouble();
    rows->push_back(r);
  }
  return true;
}

// The last row of each (scenario, target).
const Row* Find(const std::vector<Row>& rows, const std::string& scenario,
                const std::string& target) {
  const Row* found = nullptr;
  for (const Row& r : rows) {
    if (r.scenario == scenario && r.target == target) found = &r;
  }
  return found;
}

struct Check {
  std::string name;
  std::string measured;
  int state = -1;     // 1 met, 0 missed, -1 not measured
  double value = 0;   // the figure the target is about (a ratio, a rate, ms, KiB), when measured
};

void Ratio(const std::vector<Row>& rows, const std::string& what, const std::string& scenario,
           const std::string& target, const std::string& peer, double need,
           std::vector<Check>* checks) {
  Check c;
  c.name = what;
  const Row* a = Find(rows, scenario, target);
  const Row* b = Find(rows, scenario, peer);
  if (a != nullptr && b != nullptr && b->rate > 0) {
    double x = a->rate / b->rate;
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.3f", x);
    c.measured = Figure(a->rate) + " / " + Figure(b->rate) + " = " + ratio + "x (need >= " +
                 Figure(need) + "x)";
    if (scenario == "group" && a->members < 1000) c.measured += " [members " + Figure(a->members) + "]";
    c.state = x >= need ? 1 : 0;
    c.value = x;
  } else {
    c.measured = "not measured";
  }
  checks->push_back(c);
}

// A measured value against a limit, as one check: `op` is "<=", "<" or ">=".
void Limit(const std::string& what, double v, double limit, const std::string& op,
           const std::string& unit, const std::string& context, std::vector<Check>* checks) {
  Check c;
  c.name = what;
  c.value = v;
  c.measured = Figure(v) + " " + unit + " (need " + op + " " + Figure(limit) + ")";
  if (!context.empty()) c.measured += " [" + context + "]";
  const bool met = op == "<=" ? v <= limit : op == "<" ? v < limit : v >= limit;
  c.state = met ? 1 : 0;
  checks->push_back(c);
}

void Absolute(const std::vector<Row>& rows, const std::string& what, const std::string& scenario,
              const std::string& target, bool latency_p99, double limit, bool at_most,
              const std::string& unit, std::vector<Check>* checks) {
  const Row* a = Find(rows, scenario, target);
  if (a != nullptr && (!latency_p99 || a->has_latency)) {
    Limit(what, latency_p99 ? a->p99 / 1000 : a->rate, limit, at_most ? "<=" : ">=", unit,
          latency_p99 ? a->params : "", checks);
  } else {
    Check c;
    c.name = what;
    c.measured = "not measured";
    checks->push_back(c);
  }
}

// The sweep's rows: the last one of each (target, rate).
std::map<std::pair<std::string, double>, const Row*> SweepRows(const std::vector<Row>& rows) {
  std::map<std::pair<std::string, double>, const Row*> out;
  for (const Row& r : rows) {
    if (r.scenario == "chat@sweep") out[{r.target, r.target_rate}] = &r;
  }
  return out;
}

// The fairness rows: the last one of each (target, members online).
std::map<std::pair<std::string, double>, const Row*> FairnessRows(const std::vector<Row>& rows) {
  std::map<std::pair<std::string, double>, const Row*> out;
  for (const Row& r : rows) {
    if (r.scenario == "fairness") out[{r.target, r.online}] = &r;
  }
  return out;
}

constexpr double kSweepFloorMs = 2;       // imd's p99 may always reach this much
constexpr double kSweepMqttFactor = 2;    // or this multiple of mosquitto's p99 at that rate
constexpr double kHalfMaxP99Ms = 10;      // imd's p99 at half of its own maximum
constexpr double kFairP99Ms = 50;         // the probe pair's p99 during a group flood
constexpr double kFairMaxMs = 250;        // and its maximum

std::vector<Check> Targets(const std::vector<Row>& rows) {
  std::vector<Check> checks;
  Ratio(rows, "1:1 chat, stored: im-tcp >= 1.5x mosquitto QoS1", "chat", "im-tcp", "mqtt qos1",
        1.5, &checks);
  Ratio(rows, "1:1 chat, stored: im-ws >= 1.2x mosquitto QoS1", "chat", "im-ws", "mqtt qos1", 1.2,
        &checks);
  Ratio(rows, "1:1 chat, stored: im-tcp >= 0.25x the bare ceiling", "chat", "im-tcp", "ceiling",
        0.25, &checks);
  Ratio(rows, "group fan-out, 1000 online: im-tcp >= 3x mosquitto QoS0", "group", "im-tcp",
        "mqtt qos0", 3, &checks);
  Ratio(rows, "group fan-out, 1000 online: im-ws >= 2x mosquitto QoS0", "group", "im-ws",
        "mqtt qos0", 2, &checks);
  Absolute(rows, "logins/s (established), im-tcp >= 20000", "login@established", "im-tcp", false,
           20000, false, "logins/s", &checks);
  Absolute(rows, "logins/s (established), im-ws >= 20000", "login@established", "im-ws", false,
           20000, false, "logins/s", &checks);
  for (const char* t : {"im-tcp", "im-ws"}) {
    Absolute(rows, std::string("p99 delivery at half the max rate, ") + t + " <= 10 ms",
             "chat@rate", t, true, kHalfMaxP99Ms, true, "ms", &checks);
  }
  const auto sweep = SweepRows(rows);
  std::set<double> rates;
  for (const auto& [key, row] : sweep) rates.insert(key.second);
  for (double rate : rates) {
    auto mqtt = sweep.find({"mqtt qos1", rate});
    for (const char* t : {"im-tcp", "im-ws"}) {
      auto im = sweep.find({t, rate});
      if (im == sweep.end()) continue;
      const std::string what = std::string("sweep ") + Figure(rate) + "/s: " + t +
                               " p99 <= max(2 ms, 2x mosquitto)";
      if (mqtt == sweep.end() || !mqtt->second->has_latency || !im->second->has_latency) {
        Check c;
        c.name = what;
        c.measured = "not measured (no mqtt qos1 row at this rate)";
        checks.push_back(c);
        continue;
      }
      const double bound =
          std::max(kSweepFloorMs, kSweepMqttFactor * mqtt->second->p99 / 1000);
      Limit(what, im->second->p99 / 1000, bound, "<=", "ms",
            "mosquitto p99 " + Ms(mqtt->second->p99) + " ms", &checks);
    }
  }
  for (const auto& [key, row] : FairnessRows(rows)) {
    const std::string who = "fairness, " + key.first + ", " + Count(row->members) +
                            " members, " + Count(row->online) + " online: probe ";
    if (!row->has_latency || !row->has_ack) {
      Check c;
      c.name = who + "p99 < 50 ms";
      c.measured = "not measured (no probe message in the measured interval)";
      checks.push_back(c);
      continue;
    }
    Limit(who + "p99 < 50 ms", std::max(row->p99, row->ack99) / 1000, kFairP99Ms, "<", "ms",
          "the worse of send-to-ack and send-to-push", &checks);
    Limit(who + "max < 250 ms", std::max(row->max, row->ack_max) / 1000, kFairMaxMs, "<", "ms",
          "", &checks);
  }
  Absolute(rows, "idle memory per TCP session <= 3.4 KiB", "idle", "im-tcp", false, 3.4, true,
           "KiB", &checks);
  Absolute(rows, "idle memory per WebSocket session <= 7.6 KiB", "idle", "im-ws", false, 7.6,
           true, "KiB", &checks);
  return checks;
}

void PrintSweep(const std::vector<Row>& rows) {
  const auto sweep = SweepRows(rows);
  if (sweep.empty()) return;
  std::set<double> rates;
  for (const auto& [key, row] : sweep) rates.insert(key.second);
  std::printf("\n== chat@sweep: fixed rates, 50 pairs, delivery latency (ms) ==\n");
  std::printf("%9s %-10s %12s %9s %9s %9s %9s %7s\n", "rate", "target", "delivered/s", "p50",
              "p99", "max", "ack99", "errors");
  for (double rate : rates) {
    for (const char* t : kTargetOrder) {
      auto it = sweep.find({t, rate});
      if (it == sweep.end()) continue;
      const Row& r = *it->second;
      std::printf("%9s %-10s %12s %9s %9s %9s %9s %7.0f\n", Figure(rate).c_str(), t,
                  Figure(r.rate).c_str(), r.has_latency ? Ms(r.p50).c_str() : "-",
                  r.has_latency ? Ms(r.p99).c_str() : "-", r.has_latency ? Ms(r.max).c_str() : "-",
                  r.has_ack ? Ms(r.ack99).c_str() : "-", r.errors);
      if (!r.note.empty()) std::printf("%20s note: %s\n", "", r.note.c_str());
    }
  }
}

void PrintFairness(const std::vector<Row>& rows) {
  const auto fair = FairnessRows(rows);
  if (fair.empty()) return;
  std::printf("\n== fairness: a separate 1:1 pair sending at a fixed pace while one sender floods "
              "a group (the pair's latency, ms) ==\n");
  std::printf("%-10s %7s %7s %12s %9s %9s %9s %9s %9s %9s %7s\n", "target", "members", "online",
              "flood/s", "ack p50", "ack p99", "ack max", "push p50", "push p99", "push max",
              "errors");
  for (const auto& [key, r] : fair) {
    std::printf("%-10s %7s %7s %12s %9s %9s %9s %9s %9s %9s %7.0f\n", key.first.c_str(),
                Count(r->members).c_str(), Count(r->online).c_str(),
                Figure(r->rate).c_str(), r->has_ack ? Ms(r->ack50).c_str() : "-",
                r->has_ack ? Ms(r->ack99).c_str() : "-", r->has_ack ? Ms(r->ack_max).c_str() : "-",
                r->has_latency ? Ms(r->p50).c_str() : "-",
                r->has_latency ? Ms(r->p99).c_str() : "-",
                r->has_latency ? Ms(r->max).c_str() : "-", r->errors);
    if (!r->note.empty()) std::printf("%10s note: %s\n", "", r->note.c_str());
  }
}

}  // namespace

int RunReport(const std::string& path) {
  std::vector<Row> rows;
  if (!ReadRows(path, &rows)) {
    std::fprintf(stderr, "im-bench report: cannot read %s\n", path.c_str());
    return 2;
  }
  int cores = 0;
  double max_load = -1;
  for (const Row& r : rows) {
    cores = std::max(cores, r.cores);
    max_load = std::max(max_load, r.load1);
  }
  std::printf("im-bench report: %s (%zu results", path.c_str(), rows.size());
  if (cores > 0) std::printf("; %d cores", cores);
  if (max_load >= 0) std::printf("; 1-minute load average up to %.2f", max_load);
  std::printf(")\n");
  for (const char* scenario : kScenarioOrder) {
    std::vector<const Row*> present;
    for (const char* target : kTargetOrder) {
      if (const Row* r = Find(rows, scenario, target)) present.push_back(r);
    }
    if (present.empty()) continue;
    std::vector<const Row*> refs;  // mqtt rows and the ceiling row
    // Paced rows run at different rates (half of each target's own maximum): their latencies
    // compare, their rates do not.
    const bool paced = std::string(scenario) == "chat@rate";
    for (const Row* r : present) {
      if (paced) break;
      if (r->target.rfind("mqtt", 0) == 0 || r->target == "ceiling") refs.push_back(r);
    }
    const std::string unit = present.front()->unit;
    std::printf("\n== %s (%s%s) ==\n", Title(scenario).c_str(), unit.c_str(),
                unit == "KiB/conn" ? ", lower is better" : "");
    std::printf("%-10s %12s %9s %9s %9s %9s %7s", "target", "figure", "p50 ms", "p99 ms",
                "p999 ms", "ack99 ms", "errors");
    for (const Row* ref : refs) std::printf(" %12s", ("x " + ref->target).c_str());
    std::printf("  parameters\n");
    for (const Row* r : present) {
      std::printf("%-10s %12s %9s %9s %9s %9s %7.0f", r->target.c_str(), Figure(r->rate).c_str(),
                  r->has_latency ? Ms(r->p50).c_str() : "-", r->has_latency ? Ms(r->p99).c_str() : "-",
                  r->has_latency ? Ms(r->p999).c_str() : "-", r->has_ack ? Ms(r->ack99).c_str() : "-",
                  r->errors);
      for (const Row* ref : refs) {
        std::printf(" %12s", ref->rate > 0 ? (Figure(r->rate / ref->rate) + "x").c_str() : "-");
      }
      std::printf("  %s\n", r->params.c_str());
      if (!r->note.empty()) std::printf("%10s note: %s\n", "", r->note.c_str());
    }
    if (std::string(scenario) == "login@churn") {
      const Row* ceiling = Find(rows, scenario, "ceiling");
      const std::string figure =
          ceiling != nullptr ? " (the bare ceiling server: " + Figure(ceiling->rate) + " logins/s)"
                             : "";
      std::printf("note: churn is capped by connection setup on one client thread%s; "
                  "information only, the logins/s target uses established\n",
                  figure.c_str());
    }
  }
  PrintSweep(rows);
  PrintFairness(rows);

  std::printf("\n== targets ==\n");
  int met = 0, missed = 0;
  for (const Check& c : Targets(rows)) {
    const char* state = c.state == 1 ? "met" : c.state == 0 ? "MISSED" : "-";
    if (c.state == 1) ++met;
    if (c.state == 0) ++missed;
    std::printf("%-7s %-62s %s\n", state, c.name.c_str(), c.measured.c_str());
  }
  std::printf("%d met, %d missed\n", met, missed);
  return 0;
}

int RunRuns(const std::vector<std::string>& named_files) {
  struct Run {
    std::string name;  // the binary
    std::vector<Check> checks;
  };
  std::vector<Run> runs;
  std::vector<std::string> names;  // binaries, in first-seen order
  std::vector<std::string> figures;  // check names, in first-seen order
  for (const std::string& arg : named_files) {
    const size_t colon = arg.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "im-bench runs: %s is not NAME:FILE\n", arg.c_str());
      return 2;
    }
    std::vector<Row> rows;
    const std::string path = arg.substr(colon + 1);
    if (!ReadRows(path, &rows)) {
      std::fprintf(stderr, "im-bench runs: cannot read %s\n", path.c_str());
      return 2;
    }
    Run run{arg.substr(0, colon), Targets(rows)};
    if (std::find(names.begin(), names.end(), run.name) == names.end()) names.push_back(run.name);
    for (const Check& c : run.checks) {
      if (std::find(figures.begin(), figures.end(), c.name) == figures.end()) {
        figures.push_back(c.name);
      }
    }
    runs.push_back(std::move(run));
  }
  std::printf("\n== runs: each target's figure per run (ratio, logins/s, ms or KiB), then per "
              "binary min / median / max ==\n");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::printf("run %zu: %s (%s)\n", i + 1, runs[i].name.c_str(),
                named_files[i].substr(named_files[i].find(':') + 1).c_str());
  }
  std::printf("%-62s", "figure");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::printf(" %9s", (runs[i].name + "#" + std::to_string(i + 1)).c_str());
  }
  for (size_t i = 0; i < names.size(); ++i) {
    std::printf(i + 1 < names.size() ? "  %-26s" : "  %s", (names[i] + " min/median/max").c_str());
  }
  std::printf("\n");
  for (const std::string& figure : figures) {
    std::printf("%-62s", figure.c_str());
    std::map<std::string, std::vector<double>> by_name;
    for (const Run& run : runs) {
      const Check* found = nullptr;
      for (const Check& c : run.checks) {
        if (c.name == figure) found = &c;
      }
      if (found == nullptr || found->state < 0) {
        std::printf(" %9s", "-");
        continue;
      }
      std::printf(" %8s%s", Figure(found->value).c_str(), found->state == 1 ? " " : "!");
      by_name[run.name].push_back(found->value);
    }
    for (size_t i = 0; i < names.size(); ++i) {
      const char* format = i + 1 < names.size() ? "  %-26s" : "  %s";
      std::vector<double> v = by_name[names[i]];
      if (v.empty()) {
        std::printf(format, "-");
        continue;
      }
      std::sort(v.begin(), v.end());
      const double median =
          v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
      const std::string spread =
          Figure(v.front()) + " / " + Figure(median) + " / " + Figure(v.back());
      std::printf(format, spread.c_str());
    }
    std::printf("\n");
  }
  std::printf("(! = the target is missed in that run)\n");
  return 0;
}

}  // namespace imbench
