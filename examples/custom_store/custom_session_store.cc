#include "custom_session_store.h"

#include <iterator>
#include <utility>

namespace example {

im::Result<std::vector<im::SessionInfo>> CustomSessionStore::Put(const im::SessionInfo& session,
                                                                 im::KickPolicy policy) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, im::SessionInfo>& devices = by_user_[session.user];
  std::vector<im::SessionInfo> displaced;
  for (auto it = devices.begin(); it != devices.end();) {
    const im::SessionInfo& old = it->second;
    bool same_session = old.session_id == session.session_id;  // a re-put updates in place
    bool kicked = policy == im::KickPolicy::kPerAccount || old.device == session.device;
    if (!same_session && kicked) displaced.push_back(old);
    it = (same_session || kicked) ? devices.erase(it) : std::next(it);
  }
  devices[session.device] = session;
  return displaced;
}

im::Result<bool> CustomSessionStore::Remove(const im::SessionInfo& session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto user = by_user_.find(session.user);
  if (user == by_user_.end()) return false;
  auto device = user->second.find(session.device);
  // Compare-and-delete: a newer session on the same device stays.
  if (device == user->second.end() || device->second.session_id != session.session_id) {
    return false;
  }
  user->second.erase(device);
  if (user->second.empty()) by_user_.erase(user);
  return true;
}

im::Result<std::vector<im::SessionInfo>> CustomSessionStore::Find(const im::UserKey& user) {
  return FindMany({user});
}

im::Result<std::vector<im::SessionInfo>> CustomSessionStore::FindMany(
    const std::vector<im::UserKey>& users) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<im::SessionInfo> found;
  for (const im::UserKey& user : users) {
    auto it = by_user_.find(user);
    if (it == by_user_.end()) continue;
    for (const auto& [device, session] : it->second) found.push_back(session);
  }
  return found;
}

im::Result<size_t> CustomSessionStore::Count(std::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t count = 0;
  for (const auto& [user, devices] : by_user_) {
    if (tenant.empty() || user.tenant == tenant) count += devices.size();
  }
  return count;
}

}  // namespace example
