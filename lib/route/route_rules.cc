#include "route/route_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "base/stable_hash.h"
#include "im/types.h"
#include "protocol/json.h"

namespace im::internal {
namespace {

// FNV-1a, then splitmix64's finalizer: fixed forever (a change would move users between nodes
// and sides on an upgrade), and spread well enough for buckets and rendezvous scores.
uint64_t StableHash(const std::string& a, const std::string& b) {
  uint64_t h = Fnv1a(kFnvOffset, a);
  // A separator no id contains alone: ("ab","c") and ("a","bc") differ.
  h = Fnv1a(h, std::string_view("\xff", 1));
  return Mix64(Fnv1a(h, b));
}

// Weighted rendezvous score of `node` for `key`: the highest wins. With weights w_i a node is
// first for a share w_i / sum(w) of keys, and removing a node moves only the keys it held.
double RendezvousScore(const std::string& key, const RouteNode& node) {
  const uint64_t h = StableHash(key, node.id);
  const double u = (static_cast<double>(h >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
  return static_cast<double>(std::max<int64_t>(1, node.weight)) / -std::log(u);
}

bool IsRegionName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

// The host part of "1.2.3.4:5678", "[::1]:5678", "::1" or "1.2.3.4".
std::string HostOf(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    return close == std::string::npos ? "" : address.substr(1, close - 1);
  }
  const size_t colon = address.find(':');
  if (colon != std::string::npos && address.find(':', colon + 1) == std::string::npos) {
    return address.substr(0, colon);  // one colon: IPv4 with a port
  }
  return address;
}

bool ParseAddress(const std::string& host, bool* v6, unsigned char* bytes) {
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}

std::vector<RouteNode> Filter(const std::vector<RouteNode>& in,
                              const std::function<bool(const RouteNode&)>& keep) {
  std::vector<RouteNode> out;
  for (const RouteNode& n : in) {
    if (keep(n)) out.push_back(n);
  }
  return out;
}

}  // namespace

Result<Cidr> ParseCidr(const std::string& text) {
  const size_t slash = text.find('/');
  Cidr c;
  const std::string host = text.substr(0, slash);
  if (slash == std::string::npos || !ParseAddress(host, &c.v6, c.bytes)) {
    return Status::BadRequest("'" + text + "' is not a CIDR (like 10.1.0.0/16 or 2001:db8::/32)");
  }
  const std::string bits = text.substr(slash + 1);
  const int max = c.v6 ? 128 : 32;
  if (bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoi(bits) > max) {
    return Status::BadRequest("'" + text + "': the prefix length must be 0.." +
                              std::to_string(max));
  }
  c.prefix = std::stoi(bits);
  return c;
}

bool CidrContains(const Cidr& net, const std::string& address) {
  bool v6 = false;
  unsigned char bytes[16] = {};
  if (!ParseAddress(HostOf(address), &v6, bytes) || v6 != net.v6) return false;
  const int whole = net.prefix / 8;
  if (std::memcmp(bytes, net.bytes, static_cast<size_t>(whole)) != 0) return false;
  const int rest = net.prefix % 8;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (bytes[whole] & mask) == (net.bytes[whole] & mask);
}

int64_t CanaryBucket(const std::string& tenant, const std::string& user) {
  return static_cast<int64_t>(StableHash(tenant, user) % 10000);
}

bool WantsCanary(const RouteRules& rules, const std::string& tenant, const std::string& user) {
  if (rules.canary_tenants.count(tenant) > 0) return true;
  if (rules.canary_users.count(tenant + "/" + user) > 0) return true;
  return static_cast<double>(CanaryBucket(tenant, user)) < rules.canary_percent * 100.0;
}

std::vector<RouteNode> EligibleNodes(const RouteRules& rules, const std::vector<RouteNode>& live,
                                     const std::string& tenant, const std::string& user) {
  std::vector<RouteNode> up = Filter(live, [](const RouteNode& n) { return !n.draining; });
  auto pool = rules.tenant_pools.find(tenant);
  std::vector<RouteNode> pooled;
  if (pool != rules.tenant_pools.end()) {
    pooled = Filter(up, [&](const RouteNode& n) { return n.pool == pool->second; });
  }
  if (pooled.empty()) pooled = Filter(up, [](const RouteNode& n) { return n.pool.empty(); });
  const bool canary = WantsCanary(rules, tenant, user);
  std::vector<RouteNode> side = Filter(pooled, [&](const RouteNode& n) {
    return (n.tag == rules.canary_tag) == canary;
  });
  return side.empty() ? pooled : side;
}

Result<std::vector<RouteNode>> ChooseRoute(const RouteRules& rules,
                                           const std::vector<RouteNode>& live,
                                           const RouteQuery& query) {
  if (!IsValidId(query.tenant)) {
    return Status::BadRequest("'tenant' must be 1-64 bytes of UTF-8 without control characters");
  }
  if (!IsValidId(query.user)) {
    return Status::BadRequest("'user' must be 1-64 bytes of UTF-8 without control characters");
  }
  if (!query.region.empty() && !IsRegionName(query.region)) {
    return Status::BadRequest("'region' must be 1-64 letters, digits, '-', '_' or '.'");
  }
  std::vector<RouteNode> nodes = EligibleNodes(rules, live, query.tenant, query.user);
  if (nodes.empty()) return Status::Unavailable("no gateway can take this user now");
  std::string region = query.region;
  for (size_t i = 0; region.empty() && i < rules.region_cidrs.size(); ++i) {
    for (const Cidr& net : rules.region_cidrs[i].second) {
      if (CidrContains(net, query.remote_address)) {
        region = rules.region_cidrs[i].first;
        break;
      }
    }
  }
  const std::string key = query.tenant + "/" + query.user;
  struct Ranked {
    int group;  // 0 region and load fine, 1 other region, 2 overloaded
    double score;
    const RouteNode* node;
  };
  std::vector<Ranked> ranked;
  for (const RouteNode& n : nodes) {
    int group = !region.empty() && n.region != region ? 1 : 0;
    if (rules.max_load > 0 && n.load >= rules.max_load) group = 2;
    ranked.push_back({group, RendezvousScore(key, n), &n});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.score != b.score) return a.score > b.score;
    return a.node->id < b.node->id;
  });
  std::vector<RouteNode> out;
  for (const Ranked& r : ranked) {
    if (static_cast<int64_t>(out.size()) >= rules.max_answers) break;
    out.push_back(*r.node);
  }
  return out;
}

std::string RouteJson(const RouteQuery& query, bool canary, const std::vector<RouteNode>& nodes) {
  JsonWriter w;
  w.StartObject();
  w.Field("tenant", query.tenant);
  w.Field("user", query.user);
  w.Field("canary", canary);
  w.Key("gateways");
  w.StartArray();
  for (const RouteNode& n : nodes) {
    w.StartObject();
    w.Field("node", n.id);
    if (!n.tcp_address.empty()) w.Field("tcp", "tcp://" + n.tcp_address);
    if (!n.ws_address.empty()) w.Field("ws", n.ws_address);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

std::string RulesJson(const RouteRules& rules) {
  JsonWriter w;
  w.StartObject();
  w.Field("canary_tag", rules.canary_tag);
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.17g", rules.canary_percent);
  w.Key("canary_percent");
  w.Raw(percent, rapidjson::kNumberType);
  w.Key("canary_tenants");
  w.StartArray();
  for (const std::string& t : rules.canary_tenants) w.String(t);
  w.EndArray();
  w.Key("canary_users");
  w.StartArray();
  for (const std::string& u : rules.canary_users) w.String(u);
  w.EndArray();
  w.Key("tenant_pools");
  w.StartObject();
  for (const auto& [tenant, pool] : rules.tenant_pools) w.Field(tenant, pool);
  w.EndObject();
  w.Field("max_load", rules.max_load);
  w.Field("max_answers", rules.max_answers);
  w.EndObject();
  return w.str();
}

namespace {

// A JSON string whole (a \0 inside it included, for the checks to see).
std::string Str(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// The strings of array field `name` of `doc`, each checked by `valid`.
Status StringSet(const rapidjson::Value& doc, const char* name, const char* what,
                 const std::function<bool(const std::string&)>& valid,
                 std::set<std::string>* out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) return Status::OK();
  if (!it->value.IsArray()) {
    return Status::BadRequest(std::string("'") + name + "' must be an array of " + what);
  }
  for (const auto& v : it->value.GetArray()) {
    const std::string text = v.IsString() ? Str(v) : "";
    if (!v.IsString() || !valid(text)) {
      return Status::BadRequest(std::string("'") + name + "' must be an array of " + what);
    }
    out->insert(text);
  }
  return Status::OK();
}

Status Int64Field(const rapidjson::Value& doc, const char* name, int64_t min, int64_t max,
                  int64_t* out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) return Status::OK();
  if (!it->value.IsInt64() || it->value.GetInt64() < min || it->value.GetInt64() > max) {
    return Status::BadRequest(std::string("'") + name + "' must be an integer " +
                              (max == INT64_MAX ? ">= " + std::to_string(min)
                                                : "in " + std::to_string(min) + ".." +
                                                      std::to_string(max)));
  }
  *out = it->value.GetInt64();
  return Status::OK();
}

}  // namespace

Result<RouteRules> ParseRulesJson(std::string_view text) {
  rapidjson::Document doc;
  if (Status s = ParseJson(text, &doc); !s.ok()) return s;
  if (!doc.IsObject()) {
    return Status::Error(Code::kBadRequest, "bad_json", "the body must be a JSON object");
  }
  static const std::set<std::string> kFields = {"canary_tag",   "canary_percent", "canary_tenants",
                                                "canary_users", "tenant_pools",   "max_load",
                                                "max_answers"};
  for (const auto& m : doc.GetObject()) {
    const std::string name(m.name.GetString(), m.name.GetStringLength());
    if (kFields.count(name) == 0) {
      return Status::BadRequest("unknown field '" + name.substr(0, 64) + "' (known: canary_tag, "
                                "canary_percent, canary_tenants, canary_users, tenant_pools, "
                                "max_load, max_answers)");
    }
  }
  RouteRules rules;
  if (auto it = doc.FindMember("canary_tag"); it != doc.MemberEnd()) {
    if (!it->value.IsString() || !IsValidId(Str(it->value))) {
      return Status::BadRequest("'canary_tag' must be a tag: 1-64 bytes of UTF-8");
    }
    rules.canary_tag = Str(it->value);
  }
  if (auto it = doc.FindMember("canary_percent"); it != doc.MemberEnd()) {
    if (!it->value.IsNumber() || !(it->value.GetDouble() >= 0 && it->value.GetDouble() <= 100)) {
      return Status::BadRequest("'canary_percent' must be a number in 0..100");
    }
    rules.canary_percent = it->value.GetDouble();
  }
  if (Status s = StringSet(doc, "canary_tenants", "tenant ids",
                           [](const std::string& t) { return IsValidId(t); },
                           &rules.canary_tenants);
      !s.ok()) {
    return s;
  }
  auto is_user = [](const std::string& v) {
    const size_t slash = v.find('/');
    return slash != std::string::npos && IsValidId(v.substr(0, slash)) &&
           IsValidId(v.substr(slash + 1));
  };
  if (Status s = StringSet(doc, "canary_users", "\"tenant/user\" strings", is_user,
                           &rules.canary_users);
      !s.ok()) {
    return s;
  }
  if (auto it = doc.FindMember("tenant_pools"); it != doc.MemberEnd()) {
    if (!it->value.IsObject()) {
      return Status::BadRequest("'tenant_pools' must be an object of tenant: pool name");
    }
    for (const auto& m : it->value.GetObject()) {
      const std::string tenant(m.name.GetString(), m.name.GetStringLength());
      if (!IsValidId(tenant) || !m.value.IsString() || !IsValidId(Str(m.value))) {
        return Status::BadRequest("'tenant_pools' must be an object of tenant: pool name");
      }
      rules.tenant_pools[tenant] = Str(m.value);
    }
  }
  if (Status s = Int64Field(doc, "max_load", 0, INT64_MAX, &rules.max_load); !s.ok()) return s;
  if (Status s = Int64Field(doc, "max_answers", 1, 64, &rules.max_answers); !s.ok()) return s;
  return rules;
}

}  // namespace im::internal
