// The delivery half of im::Client (client/client_impl.h): pushes, resyncs, hole filling and
// the gseq presentation.
#include <algorithm>

#include "client/client_impl.h"
#include "client/client_wire.h"
#include "im/client.h"
#include "protocol/json.h"

namespace im {

using internal::I64;
using internal::ParseMessage;
using internal::Str;

void Client::Impl::NoteSynced(const SyncPage& page) {
  std::lock_guard<std::mutex> lock(seq_mu_);
  for (const auto& m : page.messages) {
    mids_.Insert(m.message.mid);
    tracker_.Mark(m.seq);
  }
}

void Client::Impl::OnText(uint64_t gen, const std::string& text) {
  rapidjson::Document d;
  if (!internal::ParseJson(text, &d, internal::kMaxServerFrameDepth).ok() || !d.IsObject()) {
    return;
  }
  auto id = d.FindMember("id");
  if (id != d.MemberEnd() && id->value.IsUint()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id->value.GetUint());
    if (it == pending_.end()) return;
    internal::Pending& p = *it->second;
    int code = d.HasMember("code") && d["code"].IsInt() ? d["code"].GetInt() : 500;
    if (code != 0) {
      p.status = Status::Error(static_cast<Code>(code), Str(d, "error"), Str(d, "message"))
                     .WithRetryAfter(I64(d, "retry_after_ms"));
    } else if (d.HasMember("body") && d["body"].IsObject()) {
      p.body = internal::ToJson(d["body"]);
    }
    p.done = true;
    cv_.notify_all();
    return;
  }
  std::string cmd = Str(d, "cmd");
  static const rapidjson::Value kEmpty(rapidjson::kObjectType);
  const rapidjson::Value& body = d.HasMember("body") && d["body"].IsObject() ? d["body"] : kEmpty;
  if (cmd == "chat.message") {
    ReceivedMessage m = ParseMessage(body);
    {
      std::lock_guard<std::mutex> lock(seq_mu_);
      if (resyncing_) {  // delivered after the resync, in seq order
        if (held_.size() >= options_.max_held_pushes) {
          // Full: this one is fetched again by a sync after the current one (see Resync).
          held_dropped_ = true;
          ++dropped_pushes_;
          return;
        }
        held_.push_back(std::move(m));
        return;
      }
      if (m.seq <= tracker_.synced()) {
        // Delivered already, or the app's backlog; but a message never seen under a seq
        // already passed means the inbox's seqs started again (a new epoch after the storage
        // lost data): a resync reads the epoch and starts over from 0.
        if (!mids_.Contains(m.message.mid)) {
          need_resync_ = true;
          control_cv_.notify_all();
        }
        return;
      }
      if (m.seq > tracker_.synced() + 1 && tracker_.above() >= options_.max_held_pushes) {
        // max_held_pushes seqs delivered above a hole already: this one waits for the sync
        // that fills the hole (started now), which fetches it.
        if (!mids_.Contains(m.message.mid)) {
          ++dropped_pushes_;
          need_resync_ = true;
          control_cv_.notify_all();
        }
        return;
      }
      tracker_.Mark(m.seq);
      if (!mids_.Insert(m.message.mid)) return;
    }
    std::vector<ReceivedMessage> one;
    one.push_back(std::move(m));
    Present(std::move(one));
  } else if (cmd == "session.kicked") {
    std::string reason = Str(body, "reason");
    {
      // A drain kick sends the client elsewhere: it reconnects (the close is 1001).
      std::lock_guard<std::mutex> lock(mu_);
      if (gen == generation_ && reason != "drain") kicked_ = true;
    }
    Emit([&] {
      if (on_kicked_) on_kicked_(reason);
    });
  } else if (cmd == "session.closed") {
    // Only the current connection's: a late push on a connection already given up (replaced by
    // a reconnect) must not end the next one.
    std::lock_guard<std::mutex> lock(mu_);
    if (gen != generation_) return;
    close_code_ = static_cast<int>(I64(body, "code"));
    close_reason_ = Str(body, "reason");
  } else if (!cmd.empty()) {
    std::string json = internal::ToJson(body);
    Emit([&] {
      if (on_push_) on_push_(cmd, json);
    });
  }
}

void Client::Impl::ControlLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  while (!stopping_) {
    // Wakes for the hole check every second, and when a held group message's hold ends.
    const int64_t hold_end = next_hold_end_.load();
    auto wake = next_tick;
    if (hold_end != internal::GseqOrder::kNever) {
      wake = std::min(
          wake, Clock::now() + std::chrono::milliseconds(std::max<int64_t>(1, hold_end - NowMs())));
    }
    control_cv_.wait_until(lock, wake, [this, hold_end] {
      return stopping_ || need_reconnect_ || need_resync_.load() ||
             next_hold_end_.load() < hold_end;
    });
    if (stopping_) break;
    lock.unlock();
    PresentExpired();
    lock.lock();
    if (need_resync_.exchange(false) && !need_reconnect_) {
      std::string epoch;
      {
        std::lock_guard<std::mutex> seq_lock(seq_mu_);
        epoch = epoch_;
      }
      lock.unlock();
      (void)Resync(epoch);
      lock.lock();
    } else if (need_reconnect_) {
      need_reconnect_ = false;
      lock.unlock();
      Reconnect();
      lock.lock();
    } else if (Clock::now() >= next_tick) {
      next_tick = Clock::now() + std::chrono::seconds(1);
      if (connected_ && logged_in_) {
        lock.unlock();
        FillHoles();
        lock.lock();
      }
    }
  }
}

std::vector<ReceivedMessage> Client::Impl::TakeHeldLocked() {
  std::vector<ReceivedMessage> held;
  held.swap(held_);
  std::sort(held.begin(), held.end(),
            [](const ReceivedMessage& a, const ReceivedMessage& b) { return a.seq < b.seq; });
  auto fresh_end = std::remove_if(held.begin(), held.end(), [this](const ReceivedMessage& m) {
    if (m.seq <= tracker_.synced()) {
      if (!mids_.Contains(m.message.mid)) need_resync_ = true;  // a new epoch: see OnText
      return true;
    }
    tracker_.Mark(m.seq);
    return !mids_.Insert(m.message.mid);
  });
  held.erase(fresh_end, held.end());
  return held;
}

void Client::Impl::FillHoles() {
  bool hole;
  std::string epoch;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    hole = tracker_.has_hole();
    epoch = epoch_;
    if (!hole) {
      hole_ticks_ = 0;
      return;
    }
    if (++hole_ticks_ < 2) return;
    hole_ticks_ = 0;
  }
  (void)Resync(epoch);
}

bool Client::Impl::Resync(const std::string& epoch, bool keep_held) {
  uint64_t after;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    resyncing_ = true;
    held_dropped_ = false;  // this sync fetches what was dropped before it
    if (!epoch_.empty() && epoch != epoch_) {
      tracker_.Reset(0);  // seqs were handed out again: everything is new
      Emit([&] {
        if (on_gap_) on_gap_("epoch", 0);
      });
    }
    epoch_ = epoch;
    after = tracker_.synced();
  }
  bool ok = true;
  for (bool more = true; more;) {
    auto page = Sync(after, 200);
    if (!page.ok()) {
      ok = false;
      break;
    }
    std::vector<ReceivedMessage> fresh;
    {
      std::lock_guard<std::mutex> lock(seq_mu_);
      if (!page->epoch.empty() && page->epoch != epoch_) {
        // The epoch changed since the login (the storage lost data, or was repaired): the
        // seqs started again, so everything is new; start over from 0.
        tracker_.Reset(0);
        epoch_ = page->epoch;
        Emit([&] {
          if (on_gap_) on_gap_("epoch", 0);
        });
        after = 0;
        continue;
      }
      if (page->gap) {
        uint64_t from = after;
        Emit([&] {
          if (on_gap_) on_gap_("retention", from);
        });
        if (page->first_seq > 0) tracker_.Reset(std::max(after, page->first_seq - 1));
      }
      for (auto& m : page->messages) {
        tracker_.Mark(m.seq);
        after = std::max(after, m.seq);
        if (mids_.Insert(m.message.mid)) fresh.push_back(std::move(m));
      }
      // An empty last page: what lies between (expired, or never pushed) is passed. Never
      // backwards: pushes held during this sync may already be marked above it.
      if (page->messages.empty() && !page->more && page->last_seq > tracker_.synced()) {
        tracker_.Reset(page->last_seq);
      }
    }
    internal::SortByGseq(&fresh);
    Present(std::move(fresh));
    more = page->more;
  }
  // A reconnect's resync that failed (the new connection went down too) keeps what it holds:
  // delivered now, those pushes would land above what this sync did not fetch.
  if (!ok && keep_held) return false;
  std::vector<ReceivedMessage> held;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    resyncing_ = false;
    held = TakeHeldLocked();
    // Pushes dropped while this sync ran may lie past its last page: one more sync fetches them.
    if (held_dropped_) {
      held_dropped_ = false;
      need_resync_ = true;
    }
  }
  Present(std::move(held));
  return ok;
}

void Client::Impl::Present(std::vector<ReceivedMessage> messages) {
  std::lock_guard<std::mutex> lock(present_mu_);
  std::vector<ReceivedMessage> out;
  const int64_t now = NowMs();
  for (ReceivedMessage& m : messages) gseq_order_.Offer(std::move(m), now, &out);
  EmitLocked(out);
}

void Client::Impl::PresentExpired() {
  if (next_hold_end_.load() > NowMs()) return;
  std::lock_guard<std::mutex> lock(present_mu_);
  std::vector<ReceivedMessage> out;
  gseq_order_.Expire(NowMs(), &out);
  EmitLocked(out);
}

void Client::Impl::EmitLocked(const std::vector<ReceivedMessage>& out) {
  next_hold_end_ = gseq_order_.NextDeadline();
  if (next_hold_end_.load() != internal::GseqOrder::kNever) control_cv_.notify_all();
  for (const ReceivedMessage& m : out) {
    Emit([&] {
      if (on_message_) on_message_(m);
    });
  }
}

}  // namespace im
