#include "ops/timed_stores.h"

#include <chrono>

namespace im::internal {
namespace {

// Observes the time from construction to destruction.
class Timer {
 public:
  explicit Timer(prometheus::Histogram* h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~Timer() {
    h_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  prometheus::Histogram* h_;
  std::chrono::steady_clock::time_point start_;
};

class TimedOfflineQueue final : public OfflineQueue {
 public:
  TimedOfflineQueue(std::shared_ptr<OfflineQueue> s, Metrics& m)
      : s_(std::move(s)),
        append_(m.StoreOp("inbox.append")),
        fetch_(m.StoreOp("inbox.fetch")),
        info_(m.StoreOp("inbox.info")),
        ack_(m.StoreOp("inbox.ack")),
        acked_(m.StoreOp("inbox.acked")),
        expire_(m.StoreOp("inbox.expire")) {}
  Result<AppendResult> Append(const AppendRequest& r) override {
    Timer t(append_);
    return s_->Append(r);
  }
  // One observation per batch: the committer appends a batch as one storage write.
  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& b) override {
    Timer t(append_);
    return s_->AppendBatch(b);
  }
  // The time from hand-over to the results: the batch's storage latency, pipelined or not.
  void AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> b,
                        AppendDone done) override {
    auto start = std::chrono::steady_clock::now();
    s_->AppendBatchAsync(std::move(b), [h = append_, start, done = std::move(done)](
                                           std::vector<Result<AppendResult>> results) {
      h->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      done(std::move(results));
    });
  }
  Result<FetchResult> Fetch(const UserKey& u, uint64_t after, size_t limit) override {
    Timer t(fetch_);
    return s_->Fetch(u, after, limit);
  }
  Result<InboxInfo> Info(const UserKey& u) override {
    Timer t(info_);
    return s_->Info(u);
  }
  Status Ack(const UserKey& u, const std::string& device, uint64_t seq) override {
    Timer t(ack_);
    return s_->Ack(u, device, seq);
  }
  Result<uint64_t> Acked(const UserKey& u, const std::string& device) override {
    Timer t(acked_);
    return s_->Acked(u, device);
  }
  Result<size_t> Expire(TimestampMs now) override {
    Timer t(expire_);
    return s_->Expire(now);
  }

 private:
  std::shared_ptr<OfflineQueue> s_;
  prometheus::Histogram *append_, *fetch_, *info_, *ack_, *acked_, *expire_;
};

class TimedGroupService final : public GroupService {
 public:
  TimedGroupService(std::shared_ptr<GroupService> s, Metrics& m)
      : s_(std::move(s)),
        create_(m.StoreOp("groups.create")),
        get_(m.StoreOp("groups.get")),
        join_(m.StoreOp("groups.join")),
        quit_(m.StoreOp("groups.quit")),
        members_(m.StoreOp("groups.members")),
        is_member_(m.StoreOp("groups.is_member")),
        all_members_(m.StoreOp("groups.all_members")) {}
  Result<GroupInfo> Create(const GroupKey& k, const std::string& name, const std::string& owner,
                           const std::vector<std::string>& members, TimestampMs now) override {
    Timer t(create_);
    return s_->Create(k, name, owner, members, now);
  }
  Result<GroupInfo> Get(const GroupKey& k) override {
    Timer t(get_);
    return s_->Get(k);
  }
  Status Join(const GroupKey& k, const std::string& user, TimestampMs now) override {
    Timer t(join_);
    return s_->Join(k, user, now);
  }
  Status Quit(const GroupKey& k, const std::string& user) override {
    Timer t(quit_);
    return s_->Quit(k, user);
  }
  Result<MemberPage> Members(const GroupKey& k, std::string_view after, size_t limit) override {
    Timer t(members_);
    return s_->Members(k, after, limit);
  }
  Result<bool> IsMember(const GroupKey& k, const std::string& user) override {
    Timer t(is_member_);
    return s_->IsMember(k, user);
  }
  Result<std::vector<std::string>> AllMembers(const GroupKey& k) override {
    Timer t(all_members_);
    return s_->AllMembers(k);
  }
  // Untimed: called only for the max_groups_per_user quota.
  Result<size_t> CountGroupsOf(const UserKey& u) override { return s_->CountGroupsOf(u); }

 private:
  std::shared_ptr<GroupService> s_;
  prometheus::Histogram *create_, *get_, *join_, *quit_, *members_, *is_member_, *all_members_;
};

class TimedUserStore final : public UserStore {
 public:
  TimedUserStore(std::shared_ptr<UserStore> s, Metrics& m)
      : s_(std::move(s)),
        create_(m.StoreOp("users.create")),
        get_(m.StoreOp("users.get")),
        verify_(m.StoreOp("users.verify_password")) {}
  Result<UserRecord> Create(const UserKey& k, std::string_view password,
                            std::string_view display_name, TimestampMs now) override {
    Timer t(create_);
    return s_->Create(k, password, display_name, now);
  }
  Result<UserRecord> Get(const UserKey& k) override {
    Timer t(get_);
    return s_->Get(k);
  }
  Result<UserRecord> VerifyPassword(const UserKey& k, std::string_view password) override {
    Timer t(verify_);
    return s_->VerifyPassword(k, password);
  }

 private:
  std::shared_ptr<UserStore> s_;
  prometheus::Histogram *create_, *get_, *verify_;
};

class TimedSessionStore final : public SessionStore {
 public:
  TimedSessionStore(std::shared_ptr<SessionStore> s, Metrics& m)
      : s_(std::move(s)),
        put_(m.StoreOp("sessions.put")),
        remove_(m.StoreOp("sessions.remove")),
        find_(m.StoreOp("sessions.find")),
        find_many_(m.StoreOp("sessions.find_many")),
        count_(m.StoreOp("sessions.count")) {}
  Result<std::vector<SessionInfo>> Put(const SessionInfo& s, KickPolicy policy) override {
    Timer t(put_);
    return s_->Put(s, policy);
  }
  Result<bool> Remove(const SessionInfo& s) override {
    Timer t(remove_);
    return s_->Remove(s);
  }
  Result<std::vector<SessionInfo>> Find(const UserKey& u) override {
    Timer t(find_);
    return s_->Find(u);
  }
  Result<std::vector<SessionInfo>> FindMany(const std::vector<UserKey>& users) override {
    Timer t(find_many_);
    return s_->FindMany(users);
  }
  Result<size_t> Count(std::string_view tenant) override {
    Timer t(count_);
    return s_->Count(tenant);
  }

 private:
  std::shared_ptr<SessionStore> s_;
  prometheus::Histogram *put_, *remove_, *find_, *find_many_, *count_;
};

}  // namespace

std::shared_ptr<OfflineQueue> TimeOfflineQueue(std::shared_ptr<OfflineQueue> s, Metrics& m) {
  if (!s) return s;
  return std::make_shared<TimedOfflineQueue>(std::move(s), m);
}
std::shared_ptr<GroupService> TimeGroupService(std::shared_ptr<GroupService> s, Metrics& m) {
  if (!s) return s;
  return std::make_shared<TimedGroupService>(std::move(s), m);
}
std::shared_ptr<UserStore> TimeUserStore(std::shared_ptr<UserStore> s, Metrics& m) {
  if (!s) return s;
  return std::make_shared<TimedUserStore>(std::move(s), m);
}
std::shared_ptr<SessionStore> TimeSessionStore(std::shared_ptr<SessionStore> s, Metrics& m) {
  if (!s) return s;
  return std::make_shared<TimedSessionStore>(std::move(s), m);
}

}  // namespace im::internal
