#include "core/chat_service.h"

#include "protocol/codec.h"
#include "protocol/json.h"

namespace im::internal {

Status ChatService::TakeSendLimits(TokenBucket& connection, const UserKey& user) {
  return deps_.limits->TakeChat(connection, user);
}

Status ChatService::CheckContent(const Message& m) const {
  const ServerOptions& o = *deps_.options;
  if (m.type.empty() || m.type.size() > o.max_type_bytes || !IsValidId(m.type)) {
    return Status::BadRequest("'type' must be 1-" + std::to_string(o.max_type_bytes) +
                              " bytes without control characters");
  }
  if (m.body.size() > o.max_body_bytes) {
    return Status::Error(Code::kTooLarge, "too_large",
                         "'body' is over " + std::to_string(o.max_body_bytes) + " bytes");
  }
  if (!IsValidUtf8(m.body)) return Status::BadRequest("'body' is not valid UTF-8");
  if (m.extra.size() > o.max_extra_bytes) {
    return Status::Error(Code::kTooLarge, "too_large",
                         "'extra' is over " + std::to_string(o.max_extra_bytes) + " bytes");
  }
  return Status::OK();
}

Status ChatService::Send(const SessionInfo* sender, std::shared_ptr<Message> message,
                         const std::string& cid, Done done, bool store_here) {
  const ServerOptions& o = *deps_.options;
  const std::string tenant = sender ? sender->user.tenant : message->tenant;
  message->tenant = tenant;
  message->from = sender ? sender->user.user : message->from;
  const bool to_group = !message->group.empty();
  if (to_group ? !IsValidId(message->group) : !IsValidId(message->to)) {
    return Status::BadRequest(std::string(to_group ? "'group'" : "'to'") +
                              " must be an id of 1-64 bytes without control characters");
  }
  if (!cid.empty() && (cid.size() > o.max_cid_bytes || !IsValidId(cid))) {
    return Status::BadRequest("'cid' must be 1-" + std::to_string(o.max_cid_bytes) +
                              " bytes without control characters");
  }
  if (Status s = CheckContent(*message); !s.ok()) return s;
  FilterDecision decision = deps_.filter->Check(tenant, message->body);
  if (decision.action == FilterAction::kReject) {
    BusinessEvent e;
    e.event = "message_rejected";
    e.tenant = tenant;
    e.user = message->from;
    e.group = message->group;
    e.reason = "content_rejected: " + decision.matched;
    deps_.events->Emit(e);
    deps_.metrics->MessageRejected();
    return Status::Error(Code::kContentRejected, "content_rejected",
                         "the message contains words that are not allowed");
  }
  if (decision.action == FilterAction::kMask) {
    message->body = std::move(decision.text);
    deps_.metrics->MessageMasked();
  }
  if (deps_.hooks->before_send) {
    // The hook may veto or rewrite the content, not the addressing; what it wrote is checked
    // like what a client sent.
    const std::string to = message->to, group = message->group, from = message->from;
    Status veto = deps_.hooks->before_send(*message);
    if (!veto.ok()) return veto;
    message->to = to;
    message->group = group;
    message->from = from;
    message->tenant = tenant;
    if (Status s = CheckContent(*message); !s.ok()) return s;
  }

  PendingSend p;
  if (sender) {
    p.sender = sender->user.user;
    p.origin_session = sender->session_id;
    if (!cid.empty()) p.dedup_key = tenant + '\x1f' + sender->user.user + '\x1f' + cid;
  } else {
    p.sender = message->from;
    if (!cid.empty()) p.dedup_key = tenant + "\x1f\x1f" + cid;  // server-side sends' own space
  }
  if (!to_group) {
    // 1:1: the sender's inbox (when there is a sender) and the receiver's.
    if (!p.sender.empty()) {
      p.recipients.push_back(UserKey{tenant, p.sender});
      p.sender_index = 0;
    }
    if (p.sender != message->to) p.recipients.push_back(UserKey{tenant, message->to});
  } else if (!deps_.groups) {
    return Status::Unavailable("group chat is not enabled on this server");
  }
  p.message = std::move(message);
  p.done = std::move(done);
  Status submitted = deps_.committer->Submit(std::move(p), store_here);
  if (submitted.ok()) deps_.metrics->MessageIn();
  return submitted;
}

Result<SendReceipt> ChatService::SendAndWait(const SessionInfo* sender,
                                             std::shared_ptr<Message> message,
                                             const std::string& cid) {
  auto promise = std::make_shared<std::promise<Result<SendReceipt>>>();
  auto future = promise->get_future();
  Status s = Send(sender, std::move(message), cid,
                  [promise](const Result<SendReceipt>& r) { promise->set_value(r); });
  if (!s.ok()) return s;
  return future.get();
}

// A tenant's retention_s is applied here, when read, while the store's sweep keeps its own
// (longer) retention: the entries in between are hidden exactly as if the sweep had taken them.
// Entries are in seq order and so in time order, so the hidden ones are a run at the front.
Result<FetchResult> ChatService::FetchRetained(const UserKey& user, uint64_t after,
                                               size_t limit) {
  Result<FetchResult> r = deps_.inbox->Fetch(user, after, limit);
  std::shared_ptr<const TenantDirectory::Policy> policy =
      deps_.tenants ? deps_.tenants->Find(user.tenant) : nullptr;
  if (!r.ok() || !policy || policy->record.quotas.retention_s == 0) return r;
  const TimestampMs cutoff =
      deps_.clock->NowMs() - static_cast<int64_t>(policy->record.quotas.retention_s) * 1000;
  for (bool hid = false;; hid = true) {
    std::vector<InboxEntry>& entries = r->entries;
    size_t hidden = 0;
    while (hidden < entries.size() && entries[hidden].message->ts < cutoff) ++hidden;
    if (!entries.empty() && hidden == entries.size() && r->more) {
      // A page of hidden entries only: the next one, so the client's cursor moves past them.
      // Each round moves `after` on by a whole page, so it ends.
      Result<FetchResult> next = deps_.inbox->Fetch(user, entries.back().seq, limit);
      if (!next.ok()) return next;
      r = std::move(next);
      continue;
    }
    if (hidden == 0 && !hid) return r;
    entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(hidden));
    // Everything before a hidden entry is older still: the first one left is the inbox's first.
    r->gap = true;
    r->first_seq = entries.empty() ? 0 : entries.front().seq;
    return r;
  }
}

Result<ChatService::SyncPage> ChatService::Sync(const UserKey& user, uint64_t after,
                                                size_t limit) {
  Result<FetchResult> r = FetchRetained(user, after, limit);
  if (!r.ok()) return r.status();
  JsonWriter w;
  w.StartObject();
  w.Key("messages");
  w.StartArray();
  SyncPage page;
  page.more = r->more;
  for (const InboxEntry& e : r->entries) {
    // Keep a page under max_sync_bytes (at least one entry), so no response outgrows the
    // client's frame limit or the send queue; the rest comes with the next page.
    if (page.count > 0 && w.view().size() + e.message->body.size() + e.message->extra.size() +
                                  256 > deps_.options->max_sync_bytes) {
      page.more = true;
      break;
    }
    w.StartObject();
    WriteMessageFields(w, e.seq, *e.message);
    w.EndObject();
    ++page.count;
  }
  w.EndArray();
  w.Field("epoch", r->epoch);
  w.Field("last_seq", r->last_seq);
  w.Field("first_seq", r->first_seq);
  w.Field("more", page.more);
  w.Field("gap", r->gap);
  w.EndObject();
  page.json = w.str();
  page.epoch = std::move(r->epoch);
  deps_.metrics->MessagesSynced(page.count);
  return page;
}

Status ChatService::Ack(const SessionInfo& session, uint64_t seq) {
  return deps_.inbox->Ack(session.user, session.device, seq);
}

}  // namespace im::internal
