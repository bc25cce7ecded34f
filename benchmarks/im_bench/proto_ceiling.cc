// The ceiling server's protocol: 4-byte big-endian length frames whose first byte is an op.
//   'L'<name> login -> 'l'          'J'<gid> join -> 'j'
//   'S'<n><name><data> -> 'a', and 'M'<data> to that user
//   'G'<n><gid><data>  -> 'a', and 'M'<data> to every other member
//   'E'<data> -> the same frame back; 'e'<text> is an error
#include "client.h"

namespace imbench {

CeilingClient::CeilingClient(ThreadCtx* thread, ClientEvents* events, uint32_t index,
                             ClientConfig config)
    : Client(thread, Framing::kLen32, events, index, std::move(config)) {}

void CeilingClient::Reset() {
  sends_ = acks_ = 0;
  joins_left_ = 0;
}

void CeilingClient::SendLogin() { Send("L" + config_.user); }

void CeilingClient::SendChat(const std::string& to, bool group, std::string_view payload,
                             uint64_t tag, int64_t sent_ns) {
  frame_.clear();
  frame_.push_back(group ? 'G' : 'S');
  frame_.push_back(static_cast<char>(to.size()));
  frame_ += to;
  frame_.append(payload.data(), payload.size());
  Track(sends_++, tag, sent_ns);
  stats().sent_total++;
  Send(frame_);
}

void CeilingClient::OnMessage(std::string_view m, uint8_t /*kind*/) {
  switch (m[0]) {
    case 'M':
      events_->OnChat(*this, m.substr(1));
      return;
    case 'a': {
      // Replies come in request order on one connection.
      uint64_t tag = 0;
      int64_t sent_ns = 0;
      if (Untrack(acks_++, &tag, &sent_ns)) events_->OnSendDone(*this, tag, true, sent_ns);
      return;
    }
    case 'l':
      if (config_.topics.empty()) {
        MarkReady();
      } else {
        joins_left_ = config_.topics.size();
        for (const auto& gid : config_.topics) Send("J" + gid);
      }
      return;
    case 'j':
      if (joins_left_ > 0 && --joins_left_ == 0) MarkReady();
      return;
    case 'E':
      return;
    case 'e':
      if (!ready()) {
        MarkFailed("ceiling: " + std::string(m.substr(1)));
      } else {
        // A refused send still gets no 'a'; count it as an ack so the FIFO stays aligned.
        uint64_t tag = 0;
        int64_t sent_ns = 0;
        stats().Error("ceiling: " + std::string(m.substr(1)));
        if (Untrack(acks_++, &tag, &sent_ns)) events_->OnSendDone(*this, tag, false, sent_ns);
      }
      return;
    default:
      stats().Error("ceiling: unexpected op");
  }
}

}  // namespace imbench
