// micro_bench: Google Benchmark micro-benchmarks of the hot paths below the server, one thread.
//
//   BM_Decode_ChatSend/fields:0  ParseRequest of a chat.send frame (100-byte body) into a fresh
//                                Request, as Server::Impl::OnFrame does for every frame.
//   BM_Decode_ChatSend/fields:1  the same plus HandleChatSend's field extraction into a Message
//                                (to, cid, type, body, extra).
//   BM_Decode_Login              ParseRequest of a login frame (real HS256 token) plus
//                                HandleLogin's field extraction (token, device).
//   BM_Encode_ChatSendAck        the chat.send ack: the {mid,seq,ts} body with JsonWriter, then
//                                EncodeResponse, as the committer's done callback does.
//   BM_Encode_Error              EncodeError of a 413 too_large answer to a chat.send.
//   BM_Push_Shared/receivers:N   chat.message pushes of one group message to N receivers the
//                                way Committer::FanOut builds them: one ChatPushEncoder (shared
//                                tail), then ForSeq per receiver. items = receivers.
//   BM_Push_Naive/receivers:N    the same frames, fully encoded per receiver:
//                                Frame::FromString(EncodePush(EncodeMessageObject(seq, m))).
//   BM_FrameDecode/read:R        FrameDecoder over a buffer of 1000 length-prefixed chat.send
//                                frames, fed in reads of R bytes (64 KiB; 1460 = TCP segments, so
//                                headers and payloads split). items = frames.
//   BM_Jwt_Verify, BM_Jwt_Sign   HS256 Verify of a valid token / SignHs256Token, static key store.
//   BM_Append/<Memory|LevelDb>/batch:B
//                                OfflineQueue append of 1:1 messages (sender + receiver inboxes,
//                                100-byte body, a dedup key as chat.send's cid) through Append
//                                (B=1) or AppendBatch (B=64, one LevelDB write). items = messages.
//                                A fresh queue per run; LevelDB in a mkdtemp dir under /tmp with
//                                sync_writes off, removed at the end. Requests are built in
//                                untimed pauses, 4096 messages at a time. Wall time (UseRealTime).
//
// Build: add the micro_bench target (benchmarks/CMakeLists.txt). Run:
//   build/benchmarks/micro_bench --benchmark_min_time=0.2
//   build/benchmarks/micro_bench --benchmark_filter=Push   # a subset
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "im/auth.h"
#include "im/backends.h"
#include "im/connection.h"
#include "im/offline_queue.h"
#include "im/status.h"
#include "im/types.h"
#include "protocol/codec.h"
#include "protocol/framing.h"
#include "protocol/json.h"

namespace {

using im::Frame;
using im::Message;
using im::Status;
using im::internal::ChatPushEncoder;
using im::internal::Fields;
using im::internal::FrameDecoder;
using im::internal::JsonWriter;
using im::internal::Request;

constexpr size_t kBodyBytes = 100;

// 100 bytes of plain text (nothing to escape), like an ordinary chat line.
std::string Body100() {
  std::string s;
  while (s.size() < kBodyBytes) s += "See you at the standup tomorrow, I will bring the notes. ";
  s.resize(kBodyBytes);
  return s;
}

std::string ChatSendFrame(uint32_t id) {
  JsonWriter w;
  w.StartObject();
  w.Field("id", static_cast<uint64_t>(id));
  w.Field("cmd", "chat.send");
  w.Key("body");
  w.StartObject();
  w.Field("to", "bob");
  w.Field("cid", "c-1700000000123-" + std::to_string(id));
  w.Field("type", "text");
  w.Field("body", Body100());
  w.EndObject();
  w.EndObject();
  return w.str();
}

std::shared_ptr<im::KeyStore> Keys() {
  return im::NewStaticKeyStore({{"default", std::string(32, 'k')}});
}

// ---------------------------------------------------------------------------------- codec ---

void BM_Decode_ChatSend(benchmark::State& state) {
  const bool fields = state.range(0) != 0;
  const std::string frame = ChatSendFrame(42);
  for (auto _ : state) {
    Request req;  // fresh per frame, as OnFrame's make_shared<Request>
    Status s = im::internal::ParseRequest(frame, &req);
    if (fields && s.ok()) {
      Fields f(req.body);
      Message m;
      std::string cid;
      s = f.OptionalString("to", &m.to);
      if (s.ok()) s = f.OptionalString("group", &m.group);
      if (s.ok()) s = f.RequiredString("cid", &cid);
      if (s.ok()) s = f.OptionalString("type", &m.type);
      if (s.ok()) s = f.RequiredString("body", &m.body);
      if (s.ok()) s = f.OptionalObject("extra", &m.extra);
      benchmark::DoNotOptimize(m);
      benchmark::DoNotOptimize(cid);
    }
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(req);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}
BENCHMARK(BM_Decode_ChatSend)->ArgName("fields")->Arg(0)->Arg(1);

void BM_Decode_Login(benchmark::State& state) {
  auto keys = Keys();
  const std::string token =
      *im::SignHs256Token(*keys, {"default", "alice"}, 3600, im::SystemClock()->NowMs());
  JsonWriter w;
  w.StartObject();
  w.Field("id", uint64_t{1});
  w.Field("cmd", "login");
  w.Key("body");
  w.StartObject();
  w.Field("token", token);
  w.Field("device", "phone-7f3a");
  w.EndObject();
  w.EndObject();
  const std::string frame = w.str();
  for (auto _ : state) {
    Request req;
    Status s = im::internal::ParseRequest(frame, &req);
    std::string tok, device(im::kDefaultDevice);
    if (s.ok()) {
      Fields f(req.body);
      s = f.RequiredString("token", &tok);
      if (s.ok()) s = f.OptionalString("device", &device);
    }
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(tok);
    benchmark::DoNotOptimize(device);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}
BENCHMARK(BM_Decode_Login);

// A parsed chat.send request, as the ack and error encoders get it.
std::unique_ptr<Request> ParsedChatSend() {
  auto req = std::make_unique<Request>();
  Status s = im::internal::ParseRequest(ChatSendFrame(42), req.get());
  (void)s;  // a constant, well-formed frame
  return req;
}

void BM_Encode_ChatSendAck(benchmark::State& state) {
  const std::unique_ptr<Request> parsed = ParsedChatSend();
  const Request& req = *parsed;
  const uint64_t mid = 512389600325402624ull, seq = 13;
  const int64_t ts = 1700000000456;
  size_t bytes = 0;
  for (auto _ : state) {
    JsonWriter w;
    w.StartObject();
    w.Key("mid");
    w.Id64(mid);
    w.Field("seq", seq);
    w.Field("ts", ts);
    w.EndObject();
    std::string out = im::internal::EncodeResponse(req, w.view());
    bytes = out.size();
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Encode_ChatSendAck);

void BM_Encode_Error(benchmark::State& state) {
  const std::unique_ptr<Request> parsed = ParsedChatSend();
  const Request& req = *parsed;
  const Status error =
      Status::Error(im::Code::kTooLarge, "too_large", "'body' is over 16384 bytes");
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out = im::internal::EncodeError(req, error);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Encode_Error);

// ------------------------------------------------------------------------------ push fan-out ---

Message GroupMessage() {
  Message m;
  m.mid = 512389600325402624ull;
  m.tenant = "default";
  m.from = "alice";
  m.group = "g-engineering";
  m.body = Body100();
  m.ts = 1700000000456;
  return m;
}

constexpr uint64_t kFirstSeq = 1000000;  // receivers' seqs: 7 digits

Frame NaivePush(const Message& m, uint64_t seq) {
  return Frame::FromString(
      im::internal::EncodePush("chat.message", im::internal::EncodeMessageObject(seq, m)));
}

void BM_Push_Shared(benchmark::State& state) {
  const Message m = GroupMessage();
  const int64_t receivers = state.range(0);
  if (ChatPushEncoder(m).ForSeq(kFirstSeq).ToString() != NaivePush(m, kFirstSeq).ToString()) {
    state.SkipWithError("shared and naive push frames differ");
    return;
  }
  for (auto _ : state) {
    ChatPushEncoder encoder(m);  // once per message
    for (int64_t k = 0; k < receivers; ++k) {
      Frame f = encoder.ForSeq(kFirstSeq + static_cast<uint64_t>(k));
      benchmark::DoNotOptimize(f);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * receivers);
}
BENCHMARK(BM_Push_Shared)->ArgName("receivers")->Arg(1)->Arg(100)->Arg(1000);

void BM_Push_Naive(benchmark::State& state) {
  const Message m = GroupMessage();
  const int64_t receivers = state.range(0);
  for (auto _ : state) {
    for (int64_t k = 0; k < receivers; ++k) {
      Frame f = NaivePush(m, kFirstSeq + static_cast<uint64_t>(k));
      benchmark::DoNotOptimize(f);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * receivers);
}
BENCHMARK(BM_Push_Naive)->ArgName("receivers")->Arg(1)->Arg(100)->Arg(1000);

// ---------------------------------------------------------------------------------- framing ---

void BM_FrameDecode(benchmark::State& state) {
  constexpr int64_t kFrames = 1000;
  const size_t read_bytes = static_cast<size_t>(state.range(0));
  std::string stream;
  for (int64_t i = 0; i < kFrames; ++i) {
    stream += im::internal::EncodeFrame(ChatSendFrame(static_cast<uint32_t>(i)));
  }
  FrameDecoder decoder(65536);  // the server's default max_frame_bytes
  std::string frame;
  for (auto _ : state) {
    int64_t frames = 0;
    for (size_t pos = 0; pos < stream.size(); pos += read_bytes) {
      std::string_view input = std::string_view(stream).substr(pos, read_bytes);
      for (;;) {
        FrameDecoder::State st = decoder.Feed(&input, &frame);
        if (st == FrameDecoder::State::kNeedMore) break;
        if (st == FrameDecoder::State::kError) {
          state.SkipWithError("FrameDecoder error");
          return;
        }
        ++frames;
        benchmark::DoNotOptimize(frame.data());
        benchmark::ClobberMemory();
      }
    }
    if (frames != kFrames) {
      state.SkipWithError("wrong frame count");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kFrames);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_FrameDecode)->ArgName("read")->Arg(1 << 16)->Arg(1460);

// -------------------------------------------------------------------------------------- JWT ---

void BM_Jwt_Verify(benchmark::State& state) {
  auto keys = Keys();
  auto verifier = im::NewHs256Verifier(keys);
  const std::string token =
      *im::SignHs256Token(*keys, {"default", "alice"}, 3600, im::SystemClock()->NowMs());
  for (auto _ : state) {
    im::Result<im::TokenClaims> claims = verifier->Verify(token);
    if (!claims.ok()) {
      state.SkipWithError(claims.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(claims);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(token.size()));
}
BENCHMARK(BM_Jwt_Verify);

void BM_Jwt_Sign(benchmark::State& state) {
  auto keys = Keys();
  const im::UserKey user{"default", "alice"};
  const im::TimestampMs now = im::SystemClock()->NowMs();
  for (auto _ : state) {
    im::Result<std::string> token = im::SignHs256Token(*keys, user, 3600, now);
    if (!token.ok()) {
      state.SkipWithError(token.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(token);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Jwt_Sign);

// ---------------------------------------------------------------------------------- storage ---

namespace fs = std::filesystem;

constexpr size_t kUsers = 10000;       // conversations are drawn among this many users
constexpr size_t kPoolMessages = 4096;  // requests built per untimed refill

const std::vector<im::UserKey>& Users() {
  static const std::vector<im::UserKey> users = [] {
    std::vector<im::UserKey> v;
    v.reserve(kUsers);
    for (size_t i = 0; i < kUsers; ++i) v.push_back({"default", "user" + std::to_string(i)});
    return v;
  }();
  return users;
}

// A 1:1 chat.send as the committer hands it to the queue: mid and ts set, the sender's inbox
// first, the receiver's second, the cid's dedup key.
im::AppendRequest OneToOne(uint64_t mid, size_t from, size_t to, const std::string& body,
                           im::TimestampMs now) {
  const auto& users = Users();
  auto m = std::make_shared<Message>();
  m->mid = mid;
  m->tenant = "default";
  m->from = users[from].user;
  m->to = users[to].user;
  m->body = body;
  m->ts = now;
  im::AppendRequest r;
  r.dedup_key = m->tenant + '\x1f' + m->from + '\x1f' + "c-" + std::to_string(mid);
  r.recipients = {users[from], users[to]};
  r.sender_index = 0;
  r.message = std::move(m);
  return r;
}

enum class Backend { kMemory, kLevelDb };

void BM_Append(benchmark::State& state, Backend backend) {
  const size_t batch_size = static_cast<size_t>(state.range(0));
  std::string dir;
  std::shared_ptr<im::OfflineQueue> queue;
  if (backend == Backend::kMemory) {
    queue = im::NewMemoryOfflineQueue();
  } else {
    char path[] = "/tmp/micro_bench-XXXXXX";
    if (mkdtemp(path) == nullptr) {
      state.SkipWithError("mkdtemp failed");
      return;
    }
    dir = path;
    im::LevelDbOptions db;
    db.sync_writes = false;
    auto opened = im::OpenLevelDbOfflineQueue(dir + "/inbox", {}, db);
    if (!opened.ok()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      state.SkipWithError(opened.status().ToString().c_str());
      return;
    }
    queue = std::move(opened).value();
  }

  const std::string body = Body100();
  std::mt19937_64 rng(42);
  uint64_t mid = 0;
  // kPoolMessages / batch_size batches, rebuilt (untimed) when used up.
  std::vector<std::vector<im::AppendRequest>> pool;
  size_t next = 0;
  auto refill = [&] {
    pool.assign(kPoolMessages / batch_size, {});
    const im::TimestampMs now = im::SystemClock()->NowMs();
    for (auto& batch : pool) {
      batch.reserve(batch_size);
      for (size_t i = 0; i < batch_size; ++i) {
        const size_t from = rng() % kUsers;
        const size_t to = (from + 1 + rng() % (kUsers - 1)) % kUsers;  // never the sender
        batch.push_back(OneToOne(++mid, from, to, body, now));
      }
    }
    next = 0;
  };
  refill();

  for (auto _ : state) {
    if (next == pool.size()) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    const std::vector<im::AppendRequest>& batch = pool[next++];
    bool ok = true;
    if (batch_size == 1) {
      im::Result<im::AppendResult> r = queue->Append(batch[0]);
      ok = r.ok();
      if (!ok) state.SkipWithError(r.status().ToString().c_str());
      benchmark::DoNotOptimize(r);
    } else {
      std::vector<im::Result<im::AppendResult>> results = queue->AppendBatch(batch);
      for (const auto& r : results) {
        if (ok && !r.ok()) {
          ok = false;
          state.SkipWithError(r.status().ToString().c_str());
        }
      }
      benchmark::DoNotOptimize(results);
    }
    if (!ok) break;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch_size));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch_size * kBodyBytes));

  pool.clear();
  queue.reset();  // closes the database before its files go
  if (!dir.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}
BENCHMARK_CAPTURE(BM_Append, Memory, Backend::kMemory)
    ->ArgName("batch")->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK_CAPTURE(BM_Append, LevelDb, Backend::kLevelDb)
    ->ArgName("batch")->Arg(1)->Arg(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
