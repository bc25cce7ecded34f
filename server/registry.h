// Backend registry: builds backends from URIs ("memory:", "leveldb:./data/inbox",
// "redis://127.0.0.1:6379/0"). The name-to-factory table lives here, in the server only; the
// library exposes plain factory functions.
#ifndef IMD_REGISTRY_H_
#define IMD_REGISTRY_H_

#include <memory>
#include <string>

#include "im/backends.h"
#include "im/offline_queue.h"
#include "im/result.h"

namespace imd {

// The scheme of a backend URI: "memory" for "memory:", "redis" for "redis://...".
std::string UriScheme(const std::string& uri);

im::Result<std::shared_ptr<im::OfflineQueue>> OpenOfflineQueue(const std::string& uri,
                                                               im::OfflineQueueOptions options,
                                                               im::LevelDbOptions db);

im::Result<std::shared_ptr<im::GroupService>> OpenGroupService(const std::string& uri,
                                                               im::GroupLimits limits,
                                                               im::LevelDbOptions db);

im::Result<std::shared_ptr<im::UserStore>> OpenUserStore(const std::string& uri,
                                                         im::LevelDbOptions db);

}  // namespace imd

#endif  // IMD_REGISTRY_H_
