// Group commands. Reads (info, members) run on the connection's worker strand; membership
// changes (create, join, quit) run on the committer thread, in order with the message appends,
// so membership and the messages a member receives never disagree.
#include "core/server_impl.h"
#include "core/group_json.h"
#include "protocol/json.h"

namespace im {

using internal::ConnState;
using internal::GroupJson;
using internal::Fields;
using internal::JsonWriter;
using internal::Request;

namespace {

Status ReadGid(const Fields& f, std::string* gid) {
  Status s = f.RequiredString("gid", gid);
  if (s.ok() && !IsValidId(*gid)) {
    s = Status::BadRequest("'gid' must be 1-64 bytes without control characters");
  }
  return s;
}

}  // namespace

// A group event (type "system") appended to `members` and pushed to all their sessions.
void Server::Impl::AppendGroupEvent(internal::Committer& committer, const GroupKey& group,
                                    const std::string& actor, const std::string& event,
                                    const std::vector<std::string>& members) {
  internal::BusinessEvent be;
  be.event = event == "created" ? "group_created" : event == "joined" ? "group_joined"
                                                                       : "group_quit";
  be.tenant = group.tenant;
  be.user = actor;
  be.group = group.gid;
  events_->Emit(be);
  if (members.empty()) return;
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
  internal::PendingSend p;
  for (const std::string& u : members) p.recipients.push_back(UserKey{group.tenant, u});
  p.message = std::move(m);
  p.done = [](const Result<SendReceipt>&) {};
  std::vector<internal::PendingSend> batch;
  batch.push_back(std::move(p));
  committer.CommitNow(batch);
}

void Server::Impl::HandleGroupCreate(const std::shared_ptr<ConnState>& state,
                                     const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  std::string name, gid;
  std::vector<std::string> members;
  Status s = f.RequiredString("name", &name);
  if (s.ok()) s = f.OptionalString("gid", &gid);
  if (s.ok() && f.Has("gid") && !IsValidId(gid)) {
    s = Status::BadRequest("'gid' must be 1-64 bytes without control characters");
  }
  if (s.ok()) {
    const rapidjson::Value* list = f.Get("members");
    if (list == nullptr) {
      s = Status::BadRequest("missing field 'members'");
    } else if (!list->IsArray()) {
      s = Status::BadRequest("field 'members' must be an array of user ids");
    } else {
      for (const auto& v : list->GetArray()) {
        if (!v.IsString() || !IsValidId(std::string_view(v.GetString(), v.GetStringLength()))) {
          s = Status::BadRequest("field 'members' must be an array of user ids");
          break;
        }
        members.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
  }
  if (s.ok() && !deps_.groups) s = Status::Unavailable("groups are not enabled on this server");
  if (s.ok()) {
    FilterDecision d = deps_.filter->Check(state->session.user.tenant, name);
    if (d.action == FilterAction::kReject) {
      s = Status::Error(Code::kContentRejected, "content_rejected",
                        "the group name contains words that are not allowed");
    } else if (d.action == FilterAction::kMask) {
      name = std::move(d.text);
    }
  }
  if (!s.ok()) return ReplyError(*state, *req, s);
  SessionInfo me;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    me = state->session;
  }
  if (gid.empty()) gid = "g" + std::to_string(group_ids_.Next(clock_->NowMs()));
  s = committer_->SubmitOp([this, state, req, me, gid, name,
                            members = std::move(members)](internal::Committer& c) {
    GroupKey key{me.user.tenant, gid};
    Result<GroupInfo> g = deps_.groups->Create(key, name, me.user.user, members, clock_->NowMs());
    if (!g.ok()) return ReplyError(*state, *req, g.status());
    auto all = deps_.groups->AllMembers(key);
    if (all.ok()) AppendGroupEvent(c, key, me.user.user, "created", *all);
    Reply(*state, *req, GroupJson(*g));
  });
  if (!s.ok()) ReplyError(*state, *req, s);
}

void Server::Impl::HandleGroupInfo(const std::shared_ptr<ConnState>& state, const Request& req) {
  std::string gid;
  Status s = ReadGid(Fields(req.body), &gid);
  if (s.ok() && !deps_.groups) s = Status::Unavailable("groups are not enabled on this server");
  if (!s.ok()) return ReplyError(*state, req, s);
  Result<GroupInfo> g = deps_.groups->Get(GroupKey{state->session.user.tenant, gid});
  if (!g.ok()) return ReplyError(*state, req, g.status());
  Reply(*state, req, GroupJson(*g));
}

void Server::Impl::HandleGroupJoinQuit(const std::shared_ptr<ConnState>& state,
                                       const std::shared_ptr<Request>& req, bool join) {
  std::string gid;
  Status s = ReadGid(Fields(req->body), &gid);
  if (s.ok() && !deps_.groups) s = Status::Unavailable("groups are not enabled on this server");
  if (!s.ok()) return ReplyError(*state, *req, s);
  UserKey me = state->session.user;
  s = committer_->SubmitOp([this, state, req, me, gid, join](internal::Committer& c) {
    GroupKey key{me.tenant, gid};
    Status r = join ? deps_.groups->Join(key, me.user, clock_->NowMs())
                    : deps_.groups->Quit(key, me.user);
    if (!r.ok()) return ReplyError(*state, *req, r);
    // Joined: every member hears it, the newcomer included. Quit: the remaining members.
    auto all = deps_.groups->AllMembers(key);
    if (all.ok()) AppendGroupEvent(c, key, me.user, join ? "joined" : "quit", *all);
    Reply(*state, *req, "");
  });
  if (!s.ok()) ReplyError(*state, *req, s);
}

void Server::Impl::HandleGroupMembers(const std::shared_ptr<ConnState>& state,
                                      const Request& req) {
  Fields f(req.body);
  std::string gid;
  std::string after;
  uint64_t limit = 100;
  Status s = ReadGid(f, &gid);
  if (s.ok()) s = f.OptionalString("after", &after);
  if (s.ok()) s = f.OptionalUint64("limit", &limit);
  if (s.ok() && (limit < 1 || limit > 500)) s = Status::BadRequest("'limit' must be 1..500");
  if (s.ok() && !deps_.groups) s = Status::Unavailable("groups are not enabled on this server");
  if (!s.ok()) return ReplyError(*state, req, s);
  GroupKey key{state->session.user.tenant, gid};
  // Permission before existence: a non-member learns nothing, not even whether the group exists.
  Result<bool> member = deps_.groups->IsMember(key, state->session.user.user);
  if (!member.ok() && member.status().code() != Code::kNotFound) {
    return ReplyError(*state, req, member.status());
  }
  if (!member.ok() || !*member) {
    return ReplyError(*state, req,
                      Status::Forbidden("not_member", "only members may list the members"));
  }
  Result<MemberPage> page = deps_.groups->Members(key, after, static_cast<size_t>(limit));
  if (!page.ok()) return ReplyError(*state, req, page.status());
  Reply(*state, req, internal::MemberPageJson(*page));
}

}  // namespace im
