// The socket front's group commands: each parses its body and calls GroupOps (the same calls as
// the REST /v1/groups endpoints). Reads (info, members) answer in the connection's turn;
// membership changes (create, join, quit) answer from the committer thread.
#include "core/socket_front.h"
#include "core/group_json.h"
#include "protocol/json.h"

namespace im::internal {


namespace {

Status ReadGid(const Fields& f, std::string* gid) {
  Status s = f.RequiredString("gid", gid);
  if (s.ok() && !IsValidId(*gid)) {
    s = Status::BadRequest("'gid' must be 1-64 bytes without control characters");
  }
  return s;
}

UserKey UserOf(ConnState& state) {
  std::lock_guard<std::mutex> lock(state.mu);
  return state.session.user;
}

}  // namespace

void SocketFront::HandleGroupCreate(const std::shared_ptr<ConnState>& state,
                                     const std::shared_ptr<Request>& req) {
  GroupOps::CreateArgs args;
  Status s = GroupOps::ParseCreate(Fields(req->body), /*members_required=*/true, &args);
  if (s.ok()) {
    s = deps_.groups->Create(UserOf(*state), std::move(args),
                        [this, state, req](const Result<GroupInfo>& g) {
                          if (!g.ok()) return ReplyError(*state, *req, g.status());
                          Reply(*state, *req, GroupJson(*g));
                        });
  }
  if (!s.ok()) ReplyError(*state, *req, s);
}

void SocketFront::HandleGroupInfo(const std::shared_ptr<ConnState>& state,
                                   const std::shared_ptr<Request>& req) {
  std::string gid;
  Status s = ReadGid(Fields(req->body), &gid);
  if (!s.ok()) return ReplyError(*state, *req, s);
  Result<GroupInfo> g = deps_.groups->Info(GroupKey{UserOf(*state).tenant, gid});
  if (!g.ok()) return ReplyError(*state, *req, g.status());
  Reply(*state, *req, GroupJson(*g));
}

void SocketFront::HandleGroupJoin(const std::shared_ptr<ConnState>& state,
                                   const std::shared_ptr<Request>& req) {
  HandleGroupChange(state, req, /*join=*/true);
}

void SocketFront::HandleGroupQuit(const std::shared_ptr<ConnState>& state,
                                   const std::shared_ptr<Request>& req) {
  HandleGroupChange(state, req, /*join=*/false);
}

void SocketFront::HandleGroupChange(const std::shared_ptr<ConnState>& state,
                                     const std::shared_ptr<Request>& req, bool join) {
  std::string gid;
  Status s = ReadGid(Fields(req->body), &gid);
  if (s.ok()) {
    const UserKey me = UserOf(*state);
    auto done = [this, state, req](const Status& r) {
      if (!r.ok()) return ReplyError(*state, *req, r);
      Reply(*state, *req, "");
    };
    const GroupKey key{me.tenant, gid};
    s = join ? deps_.groups->Join(key, me.user, done) : deps_.groups->Quit(key, me.user, done);
  }
  if (!s.ok()) ReplyError(*state, *req, s);
}

void SocketFront::HandleGroupMembers(const std::shared_ptr<ConnState>& state,
                                      const std::shared_ptr<Request>& req) {
  Fields f(req->body);
  std::string gid;
  std::string after;
  uint64_t limit = 100;
  Status s = ReadGid(f, &gid);
  if (s.ok()) s = f.OptionalString("after", &after);
  if (s.ok()) s = f.OptionalUint64("limit", &limit);
  if (s.ok() && (limit < 1 || limit > 500)) s = Status::BadRequest("'limit' must be 1..500");
  if (!s.ok()) return ReplyError(*state, *req, s);
  const UserKey me = UserOf(*state);
  Result<MemberPage> page =
      deps_.groups->Members(GroupKey{me.tenant, gid}, &me.user, after, static_cast<size_t>(limit));
  if (!page.ok()) return ReplyError(*state, *req, page.status());
  Reply(*state, *req, MemberPageJson(*page));
}

}  // namespace im::internal
