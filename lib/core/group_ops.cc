#include "core/group_ops.h"

#include <set>

namespace im::internal {

namespace {

Status NoGroups() { return Status::Unavailable("groups are not enabled on this server"); }

// The GroupService's own group_full, for the tenant's smaller bound.
Status TenantGroupFull(uint64_t max) {
  return Status::Forbidden("group_full", "a group of this tenant has at most " +
                                             std::to_string(max) + " members");
}

Status TooManyGroups(const std::string& user, uint64_t max) {
  return Status::Forbidden("too_many_groups", user + " is a member of " + std::to_string(max) +
                                                  " groups, the most this tenant allows");
}

}  // namespace

Status GroupOps::ParseCreate(const Fields& f, bool members_required, CreateArgs* args) {
  Status s = f.RequiredString("name", &args->name);
  if (s.ok()) s = f.OptionalString("gid", &args->gid);
  if (s.ok() && f.Has("gid") && !IsValidId(args->gid)) {
    s = Status::BadRequest("'gid' must be 1-64 bytes without control characters");
  }
  if (!s.ok()) return s;
  const rapidjson::Value* list = f.Get("members");
  if (list == nullptr) {
    return members_required ? Status::BadRequest("missing field 'members'") : Status::OK();
  }
  const Status bad = Status::BadRequest("field 'members' must be an array of user ids");
  if (!list->IsArray()) return bad;
  for (const auto& v : list->GetArray()) {
    if (!v.IsString() || !IsValidId(std::string_view(v.GetString(), v.GetStringLength()))) {
      return bad;
    }
    args->members.emplace_back(v.GetString(), v.GetStringLength());
  }
  return Status::OK();
}

Status GroupOps::Create(const UserKey& owner, CreateArgs args, CreateDone done) {
  if (!deps_.groups) return NoGroups();
  FilterDecision d = deps_.filter->Check(owner.tenant, args.name);
  if (d.action == FilterAction::kReject) {
    return Status::Error(Code::kContentRejected, "content_rejected",
                         "the group name contains words that are not allowed");
  }
  if (d.action == FilterAction::kMask) args.name = std::move(d.text);
  std::set<std::string> everyone(args.members.begin(), args.members.end());
  everyone.insert(owner.user);
  if (const uint64_t max = MaxMembers(owner.tenant); max > 0 && everyone.size() > max) {
    return TenantGroupFull(max);
  }
  // Each member gets the "created" event in its inbox.
  if (deps_.limits != nullptr) {
    if (Status s = deps_.limits->TakeGroup(owner, static_cast<double>(everyone.size()));
        !s.ok()) {
      return s;
    }
  }
  if (args.gid.empty()) args.gid = "g" + std::to_string(group_ids_.Next(deps_.clock->NowMs()));
  return deps_.committer->SubmitOp(
      [this, owner, args = std::move(args), everyone = std::move(everyone),
       done = std::move(done)](Committer& c) {
        GroupKey key{owner.tenant, args.gid};
        const Status quota = CheckCreateQuota(owner, everyone);
        Result<GroupInfo> g = quota.ok() ? deps_.groups->Create(key, args.name, owner.user,
                                                                args.members,
                                                                deps_.clock->NowMs())
                                         : Result<GroupInfo>(quota);
        if (g.ok()) AppendEvent(c, key, owner.user, "created");
        done(g);
      });
}

Result<GroupInfo> GroupOps::Info(const GroupKey& key) {
  if (!deps_.groups) return NoGroups();
  return deps_.groups->Get(key);
}

Status GroupOps::Join(const GroupKey& key, const std::string& user, ChangeDone done) {
  return Change(key, user, /*join=*/true, std::move(done));
}

Status GroupOps::Quit(const GroupKey& key, const std::string& user, ChangeDone done) {
  return Change(key, user, /*join=*/false, std::move(done));
}

Status GroupOps::Change(const GroupKey& key, const std::string& user, bool join,
                        ChangeDone done) {
  if (!deps_.groups) return NoGroups();
  if (deps_.limits != nullptr) {
    // The event goes into every member's inbox (a group that cannot be read costs one: the
    // change answers for itself). The quota check on the committer reads the group again: it
    // may change while this change waits in the queue.
    Result<GroupInfo> g = deps_.groups->Get(key);
    const double cost = g.ok() ? static_cast<double>(g->member_count) + (join ? 1 : 0) : 1;
    if (Status s = deps_.limits->TakeGroup(UserKey{key.tenant, user}, cost); !s.ok()) return s;
  }
  return deps_.committer->SubmitOp(
      [this, key, user, join, done = std::move(done)](Committer& c) {
        Status r = join ? CheckJoinQuota(key, user) : Status::OK();
        if (r.ok()) {
          r = join ? deps_.groups->Join(key, user, deps_.clock->NowMs())
                   : deps_.groups->Quit(key, user);
        }
        if (r.ok()) AppendEvent(c, key, user, join ? "joined" : "quit");
        done(r);
      });
}

TenantQuotas GroupOps::QuotasOf(const std::string& tenant) const {
  std::shared_ptr<const TenantDirectory::Policy> policy =
      deps_.tenants ? deps_.tenants->Find(tenant) : nullptr;
  return policy ? policy->record.quotas : TenantQuotas();
}

uint64_t GroupOps::MaxMembers(const std::string& tenant) const {
  return QuotasOf(tenant).max_group_members;
}

Status GroupOps::CheckGroupsOf(const UserKey& user, uint64_t max) {
  Result<size_t> n = deps_.groups->CountGroupsOf(user);
  if (!n.ok()) return n.status();
  return *n < max ? Status::OK() : TooManyGroups(user.user, max);
}

Status GroupOps::CheckCreateQuota(const UserKey& owner, const std::set<std::string>& everyone) {
  const uint64_t max = QuotasOf(owner.tenant).max_groups_per_user;
  if (max == 0) return Status::OK();
  for (const std::string& user : everyone) {
    if (Status s = CheckGroupsOf(UserKey{owner.tenant, user}, max); !s.ok()) return s;
  }
  return Status::OK();
}

Status GroupOps::CheckJoinQuota(const GroupKey& key, const std::string& user) {
  const TenantQuotas quotas = QuotasOf(key.tenant);
  if (quotas.max_groups_per_user > 0) {
    Status s = CheckGroupsOf(UserKey{key.tenant, user}, quotas.max_groups_per_user);
    // A member's join changes nothing: the join itself answers (409 already_member, or 404).
    if (!s.ok() && s.error() == "too_many_groups") {
      Result<bool> member = deps_.groups->IsMember(key, user);
      if (member.ok() && *member) return Status::OK();
      if (!member.ok() && member.status().code() == Code::kNotFound) return Status::OK();
    }
    if (!s.ok()) return s;
  }
  const uint64_t max = quotas.max_group_members;
  if (max == 0) return Status::OK();
  Result<GroupInfo> g = deps_.groups->Get(key);
  if (!g.ok()) return Status::OK();  // the join itself answers (404)
  if (g->member_count < max) return Status::OK();
  Result<bool> member = deps_.groups->IsMember(key, user);
  if (member.ok() && *member) return Status::OK();  // a join of a member changes nothing
  return TenantGroupFull(max);
}

Result<MemberPage> GroupOps::Members(const GroupKey& key, const std::string* member,
                                     const std::string& after, size_t limit) {
  if (!deps_.groups) return NoGroups();
  if (member != nullptr) {
    // Permission before existence: a non-member learns nothing, not even whether the group
    // exists.
    Result<bool> is = deps_.groups->IsMember(key, *member);
    if (!is.ok() && is.status().code() != Code::kNotFound) return is.status();
    if (!is.ok() || !*is) {
      return Status::Forbidden("not_member", "only members may list the members");
    }
  }
  return deps_.groups->Members(key, after, limit);
}

// The event goes to the members after the change (the newcomer included; not the one who
// quit), stored and pushed in the same committer step.
void GroupOps::AppendEvent(Committer& committer, const GroupKey& group, const std::string& actor,
                           const std::string& event) {
  BusinessEvent be;
  be.event = event == "created" ? "group_created" : event == "joined" ? "group_joined"
                                                                       : "group_quit";
  be.tenant = group.tenant;
  be.user = actor;
  be.group = group.gid;
  deps_.events->Emit(be);
  Result<std::vector<std::string>> members = deps_.groups->AllMembers(group);
  if (!members.ok() || members->empty()) return;
  auto m = std::make_shared<Message>();
  m->tenant = group.tenant;
  m->from = actor;
  m->group = group.gid;
  m->type = "system";
  if (event == "created") {
    m->body = actor + " created the group";
  } else if (event == "joined") {
    m->body = actor + " joined the group";
  } else {
    m->body = actor + " left the group";
  }
  JsonWriter w;
  w.StartObject();
  w.Field("event", event);
  w.Field("user", actor);
  w.EndObject();
  m->extra = w.str();
  PendingSend p;
  for (const std::string& u : *members) p.recipients.push_back(UserKey{group.tenant, u});
  p.message = std::move(m);
  p.done = [](const Result<SendReceipt>&) {};
  std::vector<PendingSend> batch;
  batch.push_back(std::move(p));
  committer.CommitNow(batch);
}

}  // namespace im::internal
