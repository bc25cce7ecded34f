#include "stats.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <unistd.h>

namespace imbench {

Histogram::Histogram() : buckets_(kBuckets, 0) {}

int Histogram::Index(uint64_t v) {
  if (v < (uint64_t{2} << kSubBits)) return static_cast<int>(v);
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - kSubBits;
  int index = (shift << kSubBits) + static_cast<int>(v >> shift);
  return std::min(index, kBuckets - 1);
}

int64_t Histogram::Midpoint(int index) {
  if (index < (2 << kSubBits)) return index;
  int shift = (index >> kSubBits) - 1;
  int64_t mantissa = (index & ((1 << kSubBits) - 1)) + (1 << kSubBits);
  return (mantissa << shift) + ((int64_t{1} << shift) >> 1);
}

void Histogram::Record(int64_t ns) {
  if (ns < 0) ns = 0;
  ++buckets_[Index(static_cast<uint64_t>(ns))];
  ++count_;
  if (ns > max_) max_ = ns;
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

int64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(Midpoint(i), max_);
  }
  return max_;
}

void RunResult::Param(const std::string& name, double v) {
  char text[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(text, sizeof text, "%.0f", v);
  } else {
    std::snprintf(text, sizeof text, "%.6g", v);
  }
  params.emplace_back(name, text);
  if (!params_text.empty()) params_text += ' ';
  params_text += name + "=" + text;
}

void RunResult::Param(const std::string& name, const std::string& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  params.emplace_back(name, sb.GetString());
  if (!params_text.empty()) params_text += ' ';
  params_text += name + "=" + v;
}

namespace {

std::string Ms(int64_t ns) {
  char text[32];
  double ms = static_cast<double>(ns) / 1e6;
  if (ms < 10) {
    std::snprintf(text, sizeof text, "%.3f", ms);
  } else if (ms < 1000) {
    std::snprintf(text, sizeof text, "%.1f", ms);
  } else {
    std::snprintf(text, sizeof text, "%.0f", ms);
  }
  return text;
}

void WriteHistogram(rapidjson::Writer<rapidjson::StringBuffer>& w, const Histogram& h) {
  w.StartObject();
  w.Key("count");
  w.Uint64(h.count());
  const std::pair<const char*, double> qs[] = {{"p50", 0.5}, {"p99", 0.99}, {"p999", 0.999}};
  for (const auto& [name, q] : qs) {
    w.Key(name);
    w.Double(std::round(static_cast<double>(h.Quantile(q)) / 100.0) / 10.0);
  }
  w.Key("max");
  w.Double(std::round(static_cast<double>(h.max()) / 100.0) / 10.0);
  w.EndObject();
}

}  // namespace

std::string Figure(double v) {
  char text[32];
  if (v >= 100) {
    std::snprintf(text, sizeof text, "%.0f", v);
  } else {
    std::snprintf(text, sizeof text, "%.2f", v);
  }
  return text;
}

void PrintTableHeader() {
  std::printf("%-8s %-9s %-44s %12s %-13s %9s %9s %9s %9s %6s\n", "target", "scenario", "parameters",
              "rate", "unit", "p50 ms", "p99 ms", "p999 ms", "ack99 ms", "errors");
}

void PrintTableRow(const RunResult& r) {
  std::string scenario = r.scenario;
  std::string target = r.target;
  if (!r.variant.empty()) target += "/" + r.variant.substr(r.variant.size() - 1);
  if (r.mode == "rate") scenario += "@rate";
  if (r.mode == "sweep") scenario += "@sweep";
  if (r.mode == "established") scenario += "@est";
  std::string p50 = "-", p99 = "-", p999 = "-", ack = "-";
  if (r.has_latency && r.latency.count() > 0) {
    p50 = Ms(r.latency.Quantile(0.5));
    p99 = Ms(r.latency.Quantile(0.99));
    p999 = Ms(r.latency.Quantile(0.999));
  }
  if (r.has_ack && r.ack.count() > 0) ack = Ms(r.ack.Quantile(0.99));
  std::printf("%-8s %-9s %-44s %12s %-13s %9s %9s %9s %9s %6llu\n", target.c_str(),
              scenario.c_str(), r.params_text.c_str(), Figure(r.rate).c_str(), r.unit.c_str(),
              p50.c_str(), p99.c_str(), p999.c_str(), ack.c_str(),
              static_cast<unsigned long long>(r.errors));
  if (!r.note.empty()) std::printf("  note: %s\n", r.note.c_str());
  std::fflush(stdout);
}

bool AppendJson(const std::string& path, const RunResult& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  char when[32];
  std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  w.Key("time");
  w.String(when);
  w.Key("label");
  w.String(r.label.c_str());
  w.Key("target");
  w.String(r.target.c_str());
  w.Key("scenario");
  w.String(r.scenario.c_str());
  w.Key("variant");
  w.String(r.variant.c_str());
  w.Key("mode");
  w.String(r.mode.c_str());
  w.Key("params");
  w.StartObject();
  for (const auto& [name, value] : r.params) {
    w.Key(name.c_str());
    w.RawValue(value.c_str(), value.size(), rapidjson::kNumberType);
  }
  w.EndObject();
  w.Key("rate");
  w.Double(std::round(r.rate * 100) / 100);
  w.Key("unit");
  w.String(r.unit.c_str());
  w.Key("seconds");
  w.Double(std::round(r.seconds * 1000) / 1000);
  if (r.has_latency) {
    w.Key(r.latency_name == "login" ? "login_us" : "delivery_us");
    WriteHistogram(w, r.latency);
  }
  if (r.has_ack) {
    w.Key("ack_us");
    WriteHistogram(w, r.ack);
  }
  w.Key("errors");
  w.Uint64(r.errors);
  for (const auto& [name, value] : r.extra) {
    w.Key(name.c_str());
    w.Double(value);
  }
  // The machine: its cores and its load (other processes skew every absolute figure).
  w.Key("cores");
  w.Int(static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  double load[1] = {0};
  if (getloadavg(load, 1) == 1) {
    w.Key("load1");
    w.Double(std::round(load[0] * 100) / 100);
  }
  w.Key("note");
  w.String(r.note.c_str());
  w.EndObject();
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    std::perror(("im-bench: cannot open " + path).c_str());
    return false;
  }
  std::fprintf(f, "%s\n", sb.GetString());
  std::fclose(f);
  return true;
}

}  // namespace imbench
