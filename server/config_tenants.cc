// [tenants.<name>], [keys] and [admin_keys]: the tenant records written at start, the signing
// keys and the admin keys.
#include <string>
#include <vector>

#include "config_sections.h"
#include "config_toml.h"
#include "im/auth.h"
#include "im/tenant.h"

namespace imd::internal {

namespace {

// One [tenants.<name>] section.
im::Status ReadTenant(const toml::table& t, const std::string& name, im::TenantRecord* out) {
  const std::string section = "tenants." + name + ".";
  out->name = name;
  Reader r(t, section);
  std::string status = "active";
  r.Get<std::string>("status", &status);
  im::TenantQuotas& q = out->quotas;
  r.Get<int64_t>("max_online_sessions", &q.max_online_sessions);
  r.Get<int64_t>("max_devices_per_user", &q.max_devices_per_user);
  r.Get<double>("user_send_rate", &q.user_send_rate);
  r.Get<int64_t>("user_send_burst", &q.user_send_burst);
  r.Get<double>("tenant_send_rate", &q.tenant_send_rate);
  r.Get<int64_t>("tenant_send_burst", &q.tenant_send_burst);
  r.Get<int64_t>("max_group_members", &q.max_group_members);
  r.Get<int64_t>("max_groups_per_user", &q.max_groups_per_user);
  r.Get<double>("rest_request_rate", &q.rest_request_rate);
  r.Get<int64_t>("rest_request_burst", &q.rest_request_burst);
  r.Get<double>("login_rate", &q.login_rate);
  r.Get<int64_t>("login_burst", &q.login_burst);
  r.Get<double>("command_rate", &q.command_rate);
  r.Get<int64_t>("command_burst", &q.command_burst);
  r.Get<double>("connection_send_rate", &q.connection_send_rate);
  r.Get<int64_t>("connection_send_burst", &q.connection_send_burst);
  r.Get<double>("login_account_rate", &q.login_account_rate);
  r.Get<int64_t>("login_account_burst", &q.login_account_burst);
  r.Get<double>("user_group_rate", &q.user_group_rate);
  r.Get<int64_t>("user_group_burst", &q.user_group_burst);
  r.Get<int64_t>("retention_s", &q.retention_s);
  r.Get<int64_t>("max_inbox", &q.max_inbox);
  r.Skip("words");
  if (im::Status s = r.Finish(); !s.ok()) return s;
  if (status == "suspended") {
    out->status = im::TenantStatus::kSuspended;
  } else if (status != "active") {
    return AtLine(t, section, "status", "must be \"active\" or \"suspended\"");
  }
  if (const toml::node* words = t.get("words")) {
    const toml::array* list = words->as_array();
    if (list == nullptr || list->size() > im::kMaxTenantWords) {
      return AtLine(t, section, "words", "must be an array of at most " +
                                             std::to_string(im::kMaxTenantWords) + " strings");
    }
    for (const toml::node& w : *list) {
      auto word = w.value<std::string>();
      if (!w.is_string() || !word || word->empty() || word->size() > 64) {
        return AtLine(t, section, "words", "each word must be a string of 1-64 bytes");
      }
      out->words.push_back(*word);
    }
  }
  return im::Status::OK();
}

// A tenant's keys: "hex" (one unnamed key) or [{kid = "...", key = "hex"}, ...], the signing
// key first. The hex itself is checked where the keys are opened.
im::Status ReadTenantKeys(const toml::node& v, const std::string& name,
                          std::vector<Config::KeyEntry>* out) {
  const std::string line = std::to_string(v.source().begin.line) + ": ";
  out->clear();
  if (auto hex = v.value<std::string>(); hex && v.is_string()) {
    out->push_back({"", *hex});
    return im::Status::OK();
  }
  const toml::array* list = v.as_array();
  if (list == nullptr || list->empty()) {
    return im::Status::BadRequest(line + name + ": must be a hex string or a non-empty array "
                                  "of {kid = \"...\", key = \"hex\"}");
  }
  for (const toml::node& item : *list) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      return im::Status::BadRequest(line + name + ": each key must be {kid = \"...\", key = "
                                    "\"hex\"}");
    }
    Config::KeyEntry e;
    Reader r(*t, name + ".");
    r.Get<std::string>("kid", &e.kid);
    r.Get<std::string>("key", &e.hex);
    if (im::Status s = r.Finish(); !s.ok()) return s;
    if (!im::IsValidId(e.kid)) {
      return im::Status::BadRequest(line + name + ": each key needs a kid (1-64 bytes)");
    }
    for (const Config::KeyEntry& seen : *out) {
      if (seen.kid == e.kid) {
        return im::Status::BadRequest(line + name + ": two keys with kid '" + e.kid + "'");
      }
    }
    out->push_back(std::move(e));
  }
  if (out->size() > im::kMaxKeysPerTenant) {
    return im::Status::BadRequest(line + name + ": at most " +
                                  std::to_string(im::kMaxKeysPerTenant) + " keys");
  }
  return im::Status::OK();
}

}  // namespace

// [admin_keys]: tenant = "key".
im::Status ApplyAdminKeys(const toml::table& t, Config* c) {
  for (auto& [k, v] : t) {
    auto key = v.value<std::string>();
    if (!key || key->size() < 16) {
      return im::Status::BadRequest("admin_keys." + std::string(k.str()) +
                                    " must be a string of at least 16 characters");
    }
    c->server.admin_keys[std::string(k.str())] = *key;
  }
  return im::Status::OK();
}

// [tenants.<name>]: the records written to the registry at start. After [storage]: a
// tenant's inbox bounds are checked against the store's.
im::Status ApplyTenants(const toml::table& t, Config* c) {
  for (auto& [k, v] : t) {
    const std::string name(k.str());
    const toml::table* section = v.as_table();
    if (section == nullptr || !im::IsValidId(name)) {
      return im::Status::BadRequest(std::to_string(v.source().begin.line) + ": tenants." +
                                    name + ": must be a table named by a tenant id");
    }
    im::TenantRecord record;
    if (im::Status s = ReadTenant(*section, name, &record); !s.ok()) return s;
    // A tenant's inbox bounds only shorten the store's ([storage] comes before [tenants]).
    const im::TenantQuotas& q = record.quotas;
    if (q.retention_s > static_cast<uint64_t>(c->retention_s)) {
      return AtLine(*section, "tenants." + name + ".", "retention_s",
                    "must be at most [storage] retention_s (" +
                        std::to_string(c->retention_s) + ")");
    }
    if (q.max_inbox > c->max_inbox) {
      return AtLine(*section, "tenants." + name + ".", "max_inbox",
                    "must be at most [storage] max_inbox (" + std::to_string(c->max_inbox) +
                        ")");
    }
    c->tenants.push_back(std::move(record));
  }
  return im::Status::OK();
}

// [keys]: tenant = "hex" or a list of {kid, key}.
im::Status ApplyKeys(const toml::table& t, Config* c) {
  for (auto& [k, v] : t) {
    const std::string tenant(k.str());
    if (im::Status s = ReadTenantKeys(v, "keys." + tenant, &c->keys[tenant]); !s.ok()) return s;
  }
  return im::Status::OK();
}

}  // namespace imd::internal
