// A SessionStore of the host's own: sessions in one std::map under one mutex (the bundled one
// shards by user). Stands in for a store backed by the host's own database; it passes the
// conformance suite (custom_store_conformance.cc).
#ifndef IM_EXAMPLES_CUSTOM_STORE_CUSTOM_SESSION_STORE_H_
#define IM_EXAMPLES_CUSTOM_STORE_CUSTOM_SESSION_STORE_H_

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "im/session_store.h"

namespace example {

class CustomSessionStore final : public im::SessionStore {
 public:
  im::Result<std::vector<im::SessionInfo>> Put(const im::SessionInfo& session,
                                               im::KickPolicy policy) override;
  im::Result<bool> Remove(const im::SessionInfo& session) override;
  im::Result<std::vector<im::SessionInfo>> Find(const im::UserKey& user) override;
  im::Result<std::vector<im::SessionInfo>> FindMany(
      const std::vector<im::UserKey>& users) override;
  im::Result<size_t> Count(std::string_view tenant) override;

 private:
  std::mutex mu_;
  std::map<im::UserKey, std::map<std::string, im::SessionInfo>> by_user_;  // device -> session
};

}  // namespace example

#endif  // IM_EXAMPLES_CUSTOM_STORE_CUSTOM_SESSION_STORE_H_
