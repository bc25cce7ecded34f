#include "config.h"

#include <sodium.h>
#include <toml++/toml.h>

#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include "config_sections.h"
#include "config_toml.h"

namespace imd {
namespace {

im::Status ApplyConfig(const toml::table& root, Config* c) {
  internal::Reader top(root, "");
  top.Get<std::string>("data", &c->data_dir);
  top.Skip("server");
  top.Skip("storage");
  top.Skip("keys");
  top.Skip("auth");
  top.Skip("web");
  top.Skip("http");
  top.Skip("filter");
  top.Skip("admin_keys");
  top.Skip("log");
  top.Skip("limits");
  top.Skip("cluster");
  top.Skip("routing");
  top.Skip("tenants");
  im::Status s = top.Finish();
  if (!s.ok()) return s;

  // In this order whatever the file's: [tenants] is checked against [storage]'s bounds.
  using Apply = im::Status (*)(const toml::table&, Config*);
  static constexpr std::pair<const char*, Apply> kSections[] = {
      {"server", internal::ApplyServer},
      {"limits", internal::ApplyLimits},
      {"log", internal::ApplyLog},
      {"storage", internal::ApplyStorage},
      {"cluster", internal::ApplyCluster},
      {"routing", internal::ApplyRouting},
      {"auth", internal::ApplyAuth},
      {"filter", internal::ApplyFilter},
      {"web", internal::ApplyWeb},
      {"http", internal::ApplyHttp},
      {"admin_keys", internal::ApplyAdminKeys},
      {"tenants", internal::ApplyTenants},
      {"keys", internal::ApplyKeys},
  };
  for (const auto& [name, apply] : kSections) {
    if (auto* t = root[name].as_table()) {
      if (s = apply(*t, c); !s.ok()) return s;
    }
  }
  // An fsync per storage write would hold a worker: store on the committer unless told.
  if (c->leveldb.sync_writes && !c->commit_on_worker_set) c->server.commit_on_worker = false;
  return im::Status::OK();
}

}  // namespace

std::optional<std::string> HexKey(std::string_view hex) {
  std::string bin(hex.size() / 2, '\0');
  size_t len = 0;
  if (hex.size() < 32 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0) {
    return std::nullopt;
  }
  bin.resize(len);
  return bin;
}

im::Status LoadConfigFile(const std::string& path, Config* c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return im::Status::BadRequest(path + ": cannot be read");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LoadConfigText(text, path, c);
}

im::Status LoadConfigText(std::string_view text, std::string_view source, Config* c) {
  if (im::Status s = internal::CheckDots(std::string(text), std::string(source)); !s.ok()) return s;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return internal::ParseError(source, e);
  }
  im::Status s = ApplyConfig(root, c);
  if (s.ok()) return s;
  // "FILE:LINE: key: what" when the error knows its line, else "FILE: what".
  const std::string what(s.message());
  const bool has_line = !what.empty() && what[0] >= '0' && what[0] <= '9';
  return im::Status::BadRequest(std::string(source) + (has_line ? ":" : ": ") + what);
}

}  // namespace imd
