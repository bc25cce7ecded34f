#include "registry.h"

#include <functional>
#include <map>

#include "im/backends.h"

namespace imd {

std::string UriScheme(const std::string& uri) {
  auto colon = uri.find(':');
  return colon == std::string::npos ? uri : uri.substr(0, colon);
}

im::Result<std::shared_ptr<im::OfflineQueue>> OpenOfflineQueue(const std::string& uri,
                                                               im::OfflineQueueOptions options,
                                                               im::LevelDbOptions db) {
  using Factory = std::function<im::Result<std::shared_ptr<im::OfflineQueue>>(
      const std::string& rest, im::OfflineQueueOptions, im::LevelDbOptions)>;
  static const std::map<std::string, Factory> kFactories = {
      {"memory",
       [](const std::string&, im::OfflineQueueOptions o, im::LevelDbOptions)
           -> im::Result<std::shared_ptr<im::OfflineQueue>> {
         return im::NewMemoryOfflineQueue(o);
       }},
      {"leveldb",
       [](const std::string& dir, im::OfflineQueueOptions o, im::LevelDbOptions d)
           -> im::Result<std::shared_ptr<im::OfflineQueue>> {
         if (dir.empty()) return im::Status::BadRequest("leveldb: needs a directory");
         return im::OpenLevelDbOfflineQueue(dir, o, d);
       }},
  };
  std::string scheme = UriScheme(uri);
  auto it = kFactories.find(scheme);
  if (it == kFactories.end()) {
    return im::Status::BadRequest("unknown inbox backend '" + scheme + "' in '" + uri + "'");
  }
  return it->second(uri.substr(std::min(uri.size(), scheme.size() + 1)), options, db);
}

im::Result<std::shared_ptr<im::GroupService>> OpenGroupService(const std::string& uri,
                                                               im::GroupLimits limits,
                                                               im::LevelDbOptions db) {
  std::string scheme = UriScheme(uri);
  std::string rest = uri.substr(std::min(uri.size(), scheme.size() + 1));
  if (scheme == "memory") return im::NewMemoryGroupService(limits);
  if (scheme == "leveldb") {
    if (rest.empty()) return im::Status::BadRequest("leveldb: needs a directory");
    return im::OpenLevelDbGroupService(rest, limits, db);
  }
  return im::Status::BadRequest("unknown groups backend '" + scheme + "' in '" + uri + "'");
}

im::Result<std::shared_ptr<im::UserStore>> OpenUserStore(const std::string& uri,
                                                         im::LevelDbOptions db) {
  std::string scheme = UriScheme(uri);
  std::string rest = uri.substr(std::min(uri.size(), scheme.size() + 1));
  if (scheme == "memory") return im::NewMemoryUserStore();
  if (scheme == "leveldb") {
    if (rest.empty()) return im::Status::BadRequest("leveldb: needs a directory");
    return im::OpenLevelDbUserStore(rest, {}, db);
  }
  return im::Status::BadRequest("unknown users backend '" + scheme + "' in '" + uri + "'");
}

}  // namespace imd
