// The tenant record's JSON form and the in-memory TenantStore.

#include <sodium.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "im/tenant.h"
#include "im/types.h"
#include "protocol/json.h"

namespace im {

namespace {

using internal::JsonWriter;

constexpr size_t kMaxWordBytes = 64;

Status BadField(const std::string& what) { return Status::BadRequest("tenant record: " + what); }

// An optional unsigned quota: absent keeps `*out`.
Status ReadCount(const rapidjson::Value& obj, const char* name, uint64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return Status::OK();
  if (!it->value.IsUint64()) return BadField(std::string("'") + name + "' must be an integer >= 0");
  *out = it->value.GetUint64();
  return Status::OK();
}

Status ReadRate(const rapidjson::Value& obj, const char* name, double* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return Status::OK();
  if (!it->value.IsNumber() || !std::isfinite(it->value.GetDouble()) ||
      it->value.GetDouble() < 0) {
    return BadField(std::string("'") + name + "' must be a number >= 0");
  }
  *out = it->value.GetDouble();
  return Status::OK();
}

// A rate as JSON: the shortest text that reads back as the same double (std::to_string would
// write 0.0000001 as 0.000000). Rates are finite and >= 0 (the parser refuses the rest).
std::string RateText(double rate) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, rate);
    if (std::strtod(buf, nullptr) == rate) break;
  }
  return buf;
}

// The quotas of the record's JSON, in its order: each a count or a rate.
struct QuotaField {
  const char* name;
  uint64_t TenantQuotas::*count;
  double TenantQuotas::*rate;
};
const QuotaField kQuotaFields[] = {
    {"max_online_sessions", &TenantQuotas::max_online_sessions, nullptr},
    {"max_devices_per_user", &TenantQuotas::max_devices_per_user, nullptr},
    {"user_send_rate", nullptr, &TenantQuotas::user_send_rate},
    {"user_send_burst", &TenantQuotas::user_send_burst, nullptr},
    {"tenant_send_rate", nullptr, &TenantQuotas::tenant_send_rate},
    {"tenant_send_burst", &TenantQuotas::tenant_send_burst, nullptr},
    {"max_group_members", &TenantQuotas::max_group_members, nullptr},
    {"max_groups_per_user", &TenantQuotas::max_groups_per_user, nullptr},
    {"rest_request_rate", nullptr, &TenantQuotas::rest_request_rate},
    {"rest_request_burst", &TenantQuotas::rest_request_burst, nullptr},
    {"login_rate", nullptr, &TenantQuotas::login_rate},
    {"login_burst", &TenantQuotas::login_burst, nullptr},
    {"command_rate", nullptr, &TenantQuotas::command_rate},
    {"command_burst", &TenantQuotas::command_burst, nullptr},
    {"connection_send_rate", nullptr, &TenantQuotas::connection_send_rate},
    {"connection_send_burst", &TenantQuotas::connection_send_burst, nullptr},
    {"login_account_rate", nullptr, &TenantQuotas::login_account_rate},
    {"login_account_burst", &TenantQuotas::login_account_burst, nullptr},
    {"user_group_rate", nullptr, &TenantQuotas::user_group_rate},
    {"user_group_burst", &TenantQuotas::user_group_burst, nullptr},
    {"retention_s", &TenantQuotas::retention_s, nullptr},
    {"max_inbox", &TenantQuotas::max_inbox, nullptr},
};

// `keys`: [{"kid": id, "key": at least 32 hex characters}, ...], distinct kids, at most
// kMaxKeysPerTenant.
Status ReadKeys(const rapidjson::Value& v, std::vector<SigningKey>* out) {
  if (!v.IsArray() || v.Size() > kMaxKeysPerTenant) {
    return BadField("'keys' must be an array of at most " + std::to_string(kMaxKeysPerTenant) +
                    " {\"kid\",\"key\"} objects");
  }
  for (const rapidjson::Value& k : v.GetArray()) {
    if (!k.IsObject() || k.MemberCount() != 2 || !k.HasMember("kid") || !k.HasMember("key") ||
        !k["kid"].IsString() || !k["key"].IsString()) {
      return BadField("each key must be {\"kid\": ..., \"key\": \"hex\"}");
    }
    SigningKey key;
    key.kid.assign(k["kid"].GetString(), k["kid"].GetStringLength());
    const std::string_view hex(k["key"].GetString(), k["key"].GetStringLength());
    key.key.resize(hex.size() / 2);
    size_t len = 0;
    if (!IsValidId(key.kid) || hex.size() < 32 || hex.size() % 2 != 0 ||
        sodium_hex2bin(reinterpret_cast<unsigned char*>(key.key.data()), key.key.size(),
                       hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
        len != key.key.size()) {
      return BadField("each key needs a kid (1-64 bytes) and at least 32 hex characters");
    }
    for (const SigningKey& seen : *out) {
      if (seen.kid == key.kid) return BadField("two keys with kid '" + key.kid + "'");
    }
    out->push_back(std::move(key));
  }
  return Status::OK();
}

}  // namespace

std::string TenantRecordJson(const TenantRecord& r, bool with_secrets) {
  JsonWriter w;
  w.StartObject();
  w.Field("tenant", r.name);
  w.Field("status", r.status == TenantStatus::kSuspended ? "suspended" : "active");
  w.Key("quotas");
  w.StartObject();
  for (const QuotaField& f : kQuotaFields) {
    w.Key(f.name);
    if (f.rate != nullptr) {
      w.Raw(RateText(r.quotas.*f.rate), rapidjson::kNumberType);
    } else {
      w.Uint64(r.quotas.*f.count);
    }
  }
  w.EndObject();
  w.Key("words");
  w.StartArray();
  for (const std::string& word : r.words) w.String(word);
  w.EndArray();
  w.Key("keys");
  w.StartArray();
  for (const SigningKey& k : r.keys) {
    w.StartObject();
    w.Field("kid", k.kid);
    if (with_secrets) {
      std::string hex(k.key.size() * 2 + 1, '\0');
      sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(k.key.data()),
                     k.key.size());
      hex.pop_back();
      w.Field("key", hex);
      sodium_memzero(hex.data(), hex.size());
    }
    w.EndObject();
  }
  w.EndArray();
  w.Field("updated_ms", static_cast<int64_t>(r.updated_ms));
  w.EndObject();
  return w.str();
}

Result<TenantRecord> ParseTenantRecord(std::string_view name, std::string_view json,
                                       bool* keys_given) {
  if (keys_given != nullptr) *keys_given = false;
  if (!IsValidId(name)) return Status::BadRequest("bad tenant id");
  rapidjson::Document doc;
  if (Status s = internal::ParseJson(json, &doc); !s.ok()) return s;
  if (!doc.IsObject()) return Status::Error(Code::kBadRequest, "bad_json", "not a JSON object");
  TenantRecord r;
  r.name = std::string(name);
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (key != "tenant" && key != "status" && key != "quotas" && key != "words" &&
        key != "keys" && key != "updated_ms") {
      return BadField("unknown field '" + std::string(key) + "'");
    }
  }
  if (auto it = doc.FindMember("tenant"); it != doc.MemberEnd()) {
    if (!it->value.IsString() || std::string_view(it->value.GetString()) != name) {
      return BadField("'tenant' must be the tenant of the path");
    }
  }
  if (auto it = doc.FindMember("status"); it != doc.MemberEnd()) {
    const std::string_view s =
        it->value.IsString() ? std::string_view(it->value.GetString()) : "";
    if (s == "active") {
      r.status = TenantStatus::kActive;
    } else if (s == "suspended") {
      r.status = TenantStatus::kSuspended;
    } else {
      return BadField("'status' must be \"active\" or \"suspended\"");
    }
  }
  if (auto it = doc.FindMember("quotas"); it != doc.MemberEnd()) {
    const rapidjson::Value& q = it->value;
    if (!q.IsObject()) return BadField("'quotas' must be an object");
    for (auto m = q.MemberBegin(); m != q.MemberEnd(); ++m) {
      bool known = false;
      for (const QuotaField& f : kQuotaFields) {
        known = known || std::string_view(m->name.GetString()) == f.name;
      }
      if (!known) return BadField(std::string("unknown quota '") + m->name.GetString() + "'");
    }
    Status s;
    for (const QuotaField& f : kQuotaFields) {
      if (s.ok()) {
        s = f.rate != nullptr ? ReadRate(q, f.name, &(r.quotas.*f.rate))
                              : ReadCount(q, f.name, &(r.quotas.*f.count));
      }
    }
    if (!s.ok()) return s;
  }
  if (auto it = doc.FindMember("words"); it != doc.MemberEnd()) {
    if (!it->value.IsArray() || it->value.Size() > kMaxTenantWords) {
      return BadField("'words' must be an array of at most " + std::to_string(kMaxTenantWords) +
                      " strings");
    }
    for (const rapidjson::Value& v : it->value.GetArray()) {
      if (!v.IsString() || v.GetStringLength() == 0 || v.GetStringLength() > kMaxWordBytes) {
        return BadField("each word must be a string of 1-64 bytes");
      }
      r.words.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  if (auto it = doc.FindMember("keys"); it != doc.MemberEnd()) {
    if (keys_given != nullptr) *keys_given = true;
    if (Status s = ReadKeys(it->value, &r.keys); !s.ok()) return s;
  }
  if (auto it = doc.FindMember("updated_ms"); it != doc.MemberEnd() && it->value.IsInt64()) {
    r.updated_ms = it->value.GetInt64();
  }
  return r;
}

namespace {

class MemoryTenantStore final : public TenantStore {
 public:
  Result<TenantRecord> Get(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(name);
    if (it == records_.end()) return Status::NotFound("no such tenant");
    return it->second;
  }
  Status Put(const TenantRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (records_.size() >= kMaxTenants && records_.count(record.name) == 0) {
      return Status::Error(Code::kRateLimited, "too_many_tenants", "the registry is full");
    }
    records_[record.name] = record;
    return Status::OK();
  }
  Result<std::vector<TenantRecord>> List() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TenantRecord> all;
    for (const auto& [name, r] : records_) all.push_back(r);
    return all;
  }

 private:
  std::mutex mu_;
  std::map<std::string, TenantRecord, std::less<>> records_;  // guarded by mu_
};

}  // namespace

std::shared_ptr<TenantStore> NewMemoryTenantStore() {
  return std::make_shared<MemoryTenantStore>();
}

}  // namespace im
