#include <doctest/doctest.h>

#include "core/receipt_json.h"
#include "protocol/codec.h"
#include "protocol/framing.h"
#include "protocol/json.h"

using namespace im;
using namespace im::internal;

TEST_CASE("codec: a request round trip keeps id - cmd and body") {
  Request r;
  REQUIRE(ParseRequest(R"({"id":7,"cmd":"chat.send","body":{"to":"bob","n":1}})", &r).ok());
  CHECK(r.has_id);
  CHECK(r.id == 7);
  CHECK(r.cmd == "chat.send");
  REQUIRE(r.body != nullptr);
  CHECK(std::string((*r.body)["to"].GetString()) == "bob");
  CHECK(EncodeResponse(r, R"({"x":1})") == R"({"id":7,"cmd":"chat.send","code":0,"body":{"x":1}})");
  CHECK(EncodeResponse(r, "") == R"({"id":7,"cmd":"chat.send","code":0})");
}

TEST_CASE("codec: envelope errors are bad_json") {
  const char* bad[] = {"", "{", "[]", "42", "\"x\"", "{}", R"({"cmd":1})", R"({"cmd":""})",
                       R"({"id":-1,"cmd":"ping"})", R"({"id":4294967296,"cmd":"ping"})",
                       R"({"id":"7","cmd":"ping"})", R"({"cmd":"ping","body":[1]})",
                       R"({"cmd":"ping"} trailing)", "{\"cmd\":\"p\xff\"}"};
  for (const char* text : bad) {
    Request r;
    Status s = ParseRequest(text, &r);
    CAPTURE(text);
    CHECK(s.code() == Code::kBadRequest);
    CHECK(s.error() == "bad_json");
  }
}

TEST_CASE("codec: a request without body or id is fine") {
  Request r;
  REQUIRE(ParseRequest(R"({"cmd":"ping"})", &r).ok());
  CHECK_FALSE(r.has_id);
  CHECK(r.body == nullptr);
  REQUIRE(ParseRequest(R"({"cmd":"ping","body":null,"id":4294967295})", &r).ok());
  CHECK(r.id == 4294967295u);
}

TEST_CASE("codec: errors carry code - error and message - strings are escaped") {
  Request r;
  REQUIRE(ParseRequest(R"({"id":3,"cmd":"chat.send"})", &r).ok());
  std::string e = EncodeError(r, Status::Forbidden("not_member", "say \"hi\"\n"));
  CHECK(e == R"({"id":3,"cmd":"chat.send","code":403,"error":"not_member","message":"say \"hi\"\n"})");
  CHECK(EncodeError(false, 0, "", Status::Error(Code::kBadRequest, "bad_json", "x")) ==
        R"({"code":400,"error":"bad_json","message":"x"})");
}

TEST_CASE("codec: a chat push is the same JSON for every receiver but the seq") {
  Message m;
  m.mid = 1234567890123456789ull;
  m.from = "alice";
  m.to = "bob";
  m.body = "hi \"there\"";
  m.extra = R"({"k":[1,2]})";
  m.ts = 1700000000000;
  ChatPushEncoder enc(m);
  Frame a = enc.ForSeq(1);
  Frame b = enc.ForSeq(99);
  CHECK(a.tail.get() == b.tail.get());  // shared, not copied
  CHECK(a.ToString() ==
        R"({"cmd":"chat.message","body":{"seq":1,"mid":"1234567890123456789","from":"alice","to":"bob","type":"text","body":"hi \"there\"","extra":{"k":[1,2]},"ts":1700000000000}})");
  rapidjson::Document d;
  const std::string text = b.ToString();
  d.Parse(text.data(), text.size());
  REQUIRE(d.IsObject());
  CHECK(d["body"]["seq"].GetUint64() == 99);
  CHECK(EncodeMessageObject(99, m) == ToJson(d["body"]));
  m.to.clear();
  m.group = "g1";
  m.extra.clear();
  const std::string group_text = ChatPushEncoder(m).ForSeq(5).ToString();
  d.Parse(group_text.data(), group_text.size());
  CHECK(std::string(d["body"]["group"].GetString()) == "g1");
  CHECK_FALSE(d["body"].HasMember("to"));
  CHECK_FALSE(d["body"].HasMember("extra"));
}

TEST_CASE("framing: a stream split at every byte decodes to the same frames") {
  std::string stream = EncodeFrame(R"({"cmd":"ping"})") + EncodeFrame("x") +
                       EncodeFrame(std::string(300, 'y'));
  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder dec(1024);
    std::vector<std::string> got;
    for (std::string_view part : {std::string_view(stream).substr(0, split),
                                  std::string_view(stream).substr(split)}) {
      std::string frame;
      while (!part.empty()) {
        auto st = dec.Feed(&part, &frame);
        REQUIRE(st != FrameDecoder::State::kError);
        if (st == FrameDecoder::State::kFrame) got.push_back(frame);
      }
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == R"({"cmd":"ping"})");
    CHECK(got[1] == "x");
    CHECK(got[2] == std::string(300, 'y'));
  }
}

TEST_CASE("framing: one byte at a time") {
  std::string stream = EncodeFrame("hello") + EncodeFrame("world");
  FrameDecoder dec(16);
  std::vector<std::string> got;
  for (char c : stream) {
    std::string_view one(&c, 1);
    std::string frame;
    if (dec.Feed(&one, &frame) == FrameDecoder::State::kFrame) got.push_back(frame);
  }
  CHECK(got == std::vector<std::string>{"hello", "world"});
}

TEST_CASE("framing: zero and oversize lengths are errors before any payload is buffered") {
  {
    FrameDecoder dec(16);
    std::string zero("\0\0\0\0{}", 6);
    std::string_view in(zero);
    std::string frame;
    CHECK(dec.Feed(&in, &frame) == FrameDecoder::State::kError);
    CHECK_FALSE(dec.too_big());
  }
  for (uint32_t len : {17u, 0xFFFFFFFFu}) {
    FrameDecoder dec(16);
    unsigned char h[4];
    PutFrameHeader(len, h);
    std::string in_s(reinterpret_cast<char*>(h), 4);
    std::string_view in(in_s);
    std::string frame;
    CHECK(dec.Feed(&in, &frame) == FrameDecoder::State::kError);
    CHECK(dec.too_big());
    std::string_view more("abc");
    CHECK(dec.Feed(&more, &frame) == FrameDecoder::State::kError);  // stays in error
  }
  FrameDecoder dec(16);
  std::string exact = EncodeFrame(std::string(16, 'z'));
  std::string_view in(exact);
  std::string frame;
  CHECK(dec.Feed(&in, &frame) == FrameDecoder::State::kFrame);
}

TEST_CASE("ids: valid ids and UTF-8") {
  CHECK(IsValidId("alice"));
  CHECK(IsValidId("用户"));
  CHECK(IsValidId(std::string(64, 'a')));
  CHECK_FALSE(IsValidId(std::string(65, 'a')));
  CHECK_FALSE(IsValidId(""));
  CHECK_FALSE(IsValidId("a\nb"));
  CHECK_FALSE(IsValidId("a\x7f"));
  CHECK_FALSE(IsValidId("\xc2\x85"));       // C1 control (NEL)
  CHECK_FALSE(IsValidId("\xff"));
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  CHECK(IsValidUtf8("\xf0\x9f\x98\x80"));
  // Runs of ASCII are skipped eight bytes at a time: a bad or cut sequence anywhere in a long
  // text is still found, and a good one still passes.
  for (size_t p = 0; p <= 24; ++p) {
    CAPTURE(p);
    const std::string before(p, 'a');
    const std::string after(24 - p, 'b');
    CHECK(IsValidUtf8(before + "\xc3\xa9" + after));
    CHECK(IsValidUtf8(before + "\xf0\x9f\x98\x80" + after));
    CHECK_FALSE(IsValidUtf8(before + "\xc3" + after));
    CHECK_FALSE(IsValidUtf8(before + "\xed\xa0\x80" + after));
    CHECK_FALSE(IsValidUtf8(before + "\xff" + after));
    CHECK_FALSE(IsValidUtf8(before + after + "\xe2\x82"));
  }
}

// The encoders that assemble answers without a writer write what JsonWriter writes.
TEST_CASE("codec: direct encoders match JsonWriter byte for byte") {
  const auto written = [](std::string_view v) {
    JsonWriter w;
    w.String(v);
    return w.str();
  };
  for (int b = 0; b < 256; ++b) {
    CAPTURE(b);
    const std::string one(1, static_cast<char>(b));
    std::string out;
    AppendJsonString(&out, one);
    if (b < 0x80) {
      CHECK(out == written(one));  // bytes above 0x7F only come inside well-formed UTF-8
    } else {
      CHECK(out == "\"" + one + "\"");
    }
  }
  const std::string mixed = "a\"b\\c\x01\x1f\n\t/\xc3\xa9 end";
  std::string out = "x";
  AppendJsonString(&out, mixed);
  CHECK(out == "x" + written(mixed));

  for (uint64_t v : {uint64_t{0}, uint64_t{7}, uint64_t{18446744073709551615ULL}}) {
    std::string d;
    AppendDecimal(&d, v);
    CHECK(d == std::to_string(v));
  }
  std::string neg;
  AppendDecimal(&neg, int64_t{-9223372036854775807LL - 1});
  CHECK(neg == "-9223372036854775808");

  Request r;
  r.has_id = true;
  r.id = 4294967295u;
  r.cmd = "a\"b";
  JsonWriter w;
  w.StartObject();
  w.Field("id", static_cast<uint64_t>(r.id));
  w.Field("cmd", r.cmd);
  w.Field("code", 0);
  w.Key("body");
  w.Raw(R"({"k":[1]})");
  w.EndObject();
  CHECK(EncodeResponse(r, R"({"k":[1]})") == w.str());
  r.has_id = false;
  CHECK(EncodeResponse(r, "") == R"({"cmd":"a\"b","code":0})");
}

TEST_CASE("codec: a send receipt's body") {
  SendReceipt r;
  r.mid = 18446744073709551615ULL;
  r.seq = 12;
  r.ts = 1700000000123;
  CHECK(ReceiptJson(r, false) == R"({"mid":"18446744073709551615","seq":12,"ts":1700000000123})");
  r.duplicate = true;
  r.gseq = 9;
  CHECK(ReceiptJson(r, true) ==
        R"({"mid":"18446744073709551615","seq":12,"ts":1700000000123,"duplicate":true,"gseq":9})");
  r.duplicate = false;
  CHECK(ReceiptJson(r, true) ==
        R"({"mid":"18446744073709551615","seq":12,"ts":1700000000123,"duplicate":false,"gseq":9})");
}
