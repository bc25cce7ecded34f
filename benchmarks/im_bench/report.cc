// `im-bench report FILE.jsonl`: per scenario, each target's figures and its ratio to the mqtt
// and ceiling rows of the same scenario; then the performance targets, each met or missed.
// login has two tables, one per mode (churn, established); the logins/s target uses
// established.
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
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
  int cores = 0;
  double load1 = -1;
};

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

bool ReadRows(const std::string& path, std::vector<Row>* rows) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("scenario") || !d.HasMember("rate")) {
      std::fprintf(stderr, "im-bench report: %s:%d: not a result line, skipped\n", path.c_str(), n);
      continue;
    }
    Row r;
    r.scenario = d["scenario"].GetString();
    const std::string mode =
        d.HasMember("mode") && d["mode"].IsString() ? d["mode"].GetString() : "";
    if (mode == "rate") r.scenario += "@rate";
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
        if (std::string(m.name.GetString()) == "members") r.members = m.value.GetDouble();
      }
    }
    for (const char* key : {"delivery_us", "login_us"}) {
      if (d.HasMember(key) && d[key]["count"].GetUint64() > 0) {
        r.has_latency = true;
        r.p50 = d[key]["p50"].GetDouble();
        r.p99 = d[key]["p99"].GetDouble();
        r.p999 = d[key]["p999"].GetDouble();
      }
    }
    if (d.HasMember("ack_us") && d["ack_us"]["count"].GetUint64() > 0) {
      r.has_ack = true;
      r.ack99 = d["ack_us"]["p99"].GetDouble();
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
  int state = -1;  // 1 met, 0 missed, -1 not measured
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
  } else {
    c.measured = "not measured";
  }
  checks->push_back(c);
}

void Absolute(const std::vector<Row>& rows, const std::string& what, const std::string& scenario,
              const std::string& target, bool latency_p99, double limit, bool at_most,
              const std::string& unit, std::vector<Check>* checks) {
  Check c;
  c.name = what;
  const Row* a = Find(rows, scenario, target);
  if (a != nullptr && (!latency_p99 || a->has_latency)) {
    double v = latency_p99 ? a->p99 / 1000 : a->rate;
    c.measured = Figure(v) + " " + unit + " (need " + (at_most ? "<= " : ">= ") + Figure(limit) + ")";
    if (latency_p99) c.measured += " [" + a->params + "]";
    c.state = at_most ? (v <= limit ? 1 : 0) : (v >= limit ? 1 : 0);
  } else {
    c.measured = "not measured";
  }
  checks->push_back(c);
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

  std::vector<Check> checks;
  Ratio(rows, "1:1 chat, stored: im-tcp >= 1.5x mosquitto QoS1", "chat", "im-tcp", "mqtt qos1",
        1.5, &checks);
  Ratio(rows, "1:1 chat, stored: im-ws >= 1.5x mosquitto QoS1", "chat", "im-ws", "mqtt qos1", 1.5,
        &checks);
  Ratio(rows, "group fan-out, 1000 online: im-tcp >= 3x mosquitto QoS0", "group", "im-tcp",
        "mqtt qos0", 3, &checks);
  Ratio(rows, "group fan-out, 1000 online: im-ws >= 3x mosquitto QoS0", "group", "im-ws",
        "mqtt qos0", 3, &checks);
  Absolute(rows, "logins/s (established), im-tcp >= 20000", "login@established", "im-tcp", false,
           20000, false, "logins/s", &checks);
  Absolute(rows, "logins/s (established), im-ws >= 20000", "login@established", "im-ws", false,
           20000, false, "logins/s", &checks);
  Absolute(rows, "p99 delivery at half the max rate, im-tcp <= 5 ms", "chat@rate", "im-tcp", true,
           5, true, "ms", &checks);
  Absolute(rows, "idle memory per TCP session <= 4 KiB", "idle", "im-tcp", false, 4, true, "KiB",
           &checks);
  Absolute(rows, "idle memory per WebSocket session <= 8 KiB", "idle", "im-ws", false, 8, true,
           "KiB", &checks);
  std::printf("\n== targets ==\n");
  int met = 0, missed = 0;
  for (const Check& c : checks) {
    const char* state = c.state == 1 ? "met" : c.state == 0 ? "MISSED" : "-";
    if (c.state == 1) ++met;
    if (c.state == 0) ++missed;
    std::printf("%-7s %-56s %s\n", state, c.name.c_str(), c.measured.c_str());
  }
  std::printf("%d met, %d missed\n", met, missed);
  return 0;
}

}  // namespace imbench
