// ParseJson: the one parse every JSON text from outside goes through.
#include <doctest/doctest.h>

#include <string>

#include "protocol/codec.h"
#include "protocol/json.h"

namespace im::internal {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// "ok" or the error's name and message, so that a CHECK shows what came back.
std::string Outcome(std::string_view text, int max_depth = kMaxJsonDepth) {
  rapidjson::Document doc;
  Status s = ParseJson(text, &doc, max_depth);
  return s.ok() ? "ok" : std::string(s.error()) + ": " + std::string(s.message());
}

bool Refused(std::string_view text, const char* why, int max_depth = kMaxJsonDepth) {
  const std::string o = Outcome(text, max_depth);
  return o.rfind("bad_json: ", 0) == 0 && o.find(why) != std::string::npos;
}

TEST_CASE("json: nesting is bounded at kMaxJsonDepth arrays and objects") {
  CHECK(kMaxJsonDepth == 32);
  CHECK(Outcome(Nested(32)) == "ok");
  CHECK(Refused(Nested(33), "nested deeper than 32 arrays and objects at offset 32"));
  CHECK(Outcome(R"({"a":{"b":)" + Nested(30) + "}}") == "ok");
  CHECK(Refused(R"({"a":{"b":)" + Nested(31) + "}}", "nested deeper than 32"));
  CHECK(Refused(std::string(1000000, '['), "at offset 32"));
  CHECK(Refused(std::string(100000, '{'), "nested deeper"));
  CHECK(Outcome(Nested(3), 3) == "ok");
  CHECK(Refused(Nested(4), "nested deeper than 3", 3));
}

TEST_CASE("json: brackets inside strings do not count, escaped quotes do not end strings") {
  const std::string many(1000, '[');
  CHECK(Outcome(R"({"a":")" + many + R"("})") == "ok");
  CHECK(Outcome(R"({"a":"\")" + many + R"(\""})") == "ok");
  CHECK(Outcome(R"({"a":"\\"})") == "ok");  // an escaped backslash, then the closing quote
  CHECK(Refused(R"({"a":"\\",)" + std::string(40, '[') + "}", "nested deeper"));
}

TEST_CASE("json: NUL bytes, trailing data, invalid UTF-8 and lone surrogates are bad_json") {
  CHECK(Refused(std::string("{}\0junk", 7), "NUL byte at offset 2"));
  CHECK(Refused(std::string("{\"a\":\"x\0\"}", 10), "NUL byte"));
  CHECK(Refused("{} {}", "invalid JSON"));
  CHECK(Refused("{\"a\":\"\xC3\"}", "invalid JSON"));
  CHECK(Refused(R"({"a":"\ud800"})", "invalid JSON"));
  CHECK(Outcome(R"({"a":"\ud83d\ude00"})") == "ok");  // a pair is fine
  // A lone low surrogate: RapidJSON would store it as bytes that are not UTF-8.
  CHECK(Refused(R"({"a":"\udc00"})", "lone low surrogate escape at offset 6"));
  CHECK(Refused(R"({"a":"x\uDFFFy"})", "lone low surrogate"));
  CHECK(Refused(R"({"a":"\ud83d\\\ude00"})", "invalid JSON"));  // the pair is broken up
  CHECK(Refused(R"({"a":"\\\udc00"})", "lone low surrogate"));   // after an escaped backslash
  CHECK(Outcome(R"({"a":"\\udc00"})") == "ok");                   // an escaped backslash, then text
}

// Strings are checked for well-formed UTF-8 by the scan, with the parser's message and the
// offset of the first bad byte; keys as well as values, escapes do not hide a raw byte.
TEST_CASE("json: every string is well-formed UTF-8, keys too, named at the bad byte's offset") {
  CHECK(Outcome("{\"a\":\"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF\"}") == "ok");
  CHECK(Outcome("{\"\xC3\xA9\":\"x\"}") == "ok");
  const char* bad[] = {
      "\xC0\xAF",          // overlong "/"
      "\xE0\x80\xAF",      // overlong, three bytes
      "\xED\xA0\x80",      // a surrogate (U+D800)
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF5\x80\x80\x80",  // no such lead byte
      "\x80",              // a continuation byte alone
      "\xE2\x82",          // cut short before the quote
      "\xFF",
  };
  for (const char* b : bad) {
    CAPTURE(b);
    CHECK(Outcome(std::string("{\"a\":\"ok ") + b + "\"}") ==
          "bad_json: invalid JSON: Invalid encoding in string. at offset 9");
    CHECK(Refused(std::string("{\"k") + b + "\":1}", "Invalid encoding in string. at offset 3"));
    CHECK(Refused(std::string("{\"a\":\"\\\"") + b + "\"}", "at offset 8"));
  }
  // A byte above 0x7F outside a string is the parser's error.
  CHECK(Refused("{\"a\":1\xC3\xA9}", "invalid JSON"));
}

// The scan skips plain ASCII in strings 16 bytes at a time: a bad byte, an escape or a quote
// at any position of a long string, and a string ending at any position, are seen as before.
TEST_CASE("json: long strings - bad bytes, escapes and ends at every position") {
  for (size_t p = 0; p <= 40; ++p) {
    CAPTURE(p);
    const std::string before(p, 'x');
    const std::string after(40 - p, 'y');
    const std::string at = "at offset " + std::to_string(6 + p);
    CHECK(Outcome("{\"a\":\"" + before + "\xC3\xA9" + after + "\"}") == "ok");
    CHECK(Outcome("{\"a\":\"" + before + "\xE2\x82" + after + "\"}") ==
          "bad_json: invalid JSON: Invalid encoding in string. " + at);
    CHECK(Outcome("{\"a\":\"" + before + "\x80" + after + "\"}") ==
          "bad_json: invalid JSON: Invalid encoding in string. " + at);
    CHECK(Refused("{\"a\":\"" + before + "\\udc00" + after + "\"}",
                  ("lone low surrogate escape " + at).c_str()));
    // A high surrogate escape, text, then a low one: lone, unless no text comes between.
    const std::string split = "{\"a\":\"\\ud800" + before + "\\udc00\"}";
    if (p == 0) {
      CHECK(Outcome(split) == "ok");
    } else {
      CHECK(Refused(split, "lone low surrogate"));
    }
    // An escaped quote and an escaped backslash amid text, then a bracket after the string: the
    // value is read whole and the nesting counted outside it.
    rapidjson::Document doc;
    REQUIRE(ParseJson("{\"a\":\"" + before + "\\\"[{\\\\" + after + "\",\"b\":[[]]}", &doc).ok());
    CHECK(std::string(doc["a"].GetString()) == before + "\"[{\\" + after);
    CHECK(Outcome("{\"a\":\"" + before + "[[[\",\"b\":" + Nested(31) + "}") == "ok");
    // A string that ends at position p, and one left open.
    CHECK(Outcome("{\"" + before + "\":1}") == "ok");
    CHECK(Refused("{\"a\":\"" + before, "invalid JSON"));
  }
}

// RapidJSON 1.1.0's SIMD paths took "below 0x20" as "below 0x1A" (CMakeLists.txt overlays the
// fix): a raw 0x1A-0x1F inside an aligned block was accepted on the way in and written unescaped
// on the way out. Every control byte, at every position of strings long enough for those paths.
TEST_CASE("json: control bytes at every position of long strings - refused raw, escaped written") {
  for (int c = 0x01; c < 0x20; ++c) {
    CAPTURE(c);
    for (size_t p = 0; p <= 48; ++p) {
      CAPTURE(p);
      std::string text = std::string(p, 'x') + static_cast<char>(c) + std::string(63 - p, 'y');
      CHECK(Refused("{\"a\":\"" + text + "\"}", "invalid JSON"));
      JsonWriter w;
      w.StartObject();
      w.Field("a", text);
      w.EndObject();
      const std::string out = w.str();
      bool raw = false;
      for (char b : out) raw = raw || static_cast<unsigned char>(b) < 0x20;
      CHECK_FALSE(raw);
      rapidjson::Document doc;
      REQUIRE(ParseJson(out, &doc).ok());
      CHECK(std::string(doc["a"].GetString(), doc["a"].GetStringLength()) == text);
      std::string appended;
      AppendJsonString(&appended, text);
      CHECK(out == "{\"a\":" + appended + "}");
    }
  }
}

TEST_CASE("json: a number beyond the range of a double is bad_json, not infinity") {
  CHECK(Refused(R"({"a":2.5e308})", "beyond the range of a double"));
  CHECK(Refused(R"({"a":[1,{"b":-1.5e309}]})", "beyond the range of a double"));
  CHECK(Outcome(R"({"a":1.7e308,"b":-1e-400})") == "ok");  // the largest finite; an underflow is 0
  // What a refusal prevents: a stored value that writes back as broken JSON.
  Request r;
  CHECK(ParseRequest(R"({"cmd":"chat.send","body":{"extra":{"n":1e309}}})", &r).error() ==
        "bad_json");
}

TEST_CASE("json: the envelope codec applies the bound and answers without id") {
  Request r;
  Status s = ParseRequest(R"({"id":7,"cmd":"ping","body":{"x":)" + Nested(31) + "}}", &r);
  CHECK(s.error() == "bad_json");
  CHECK_FALSE(r.has_id);
  Request ok;
  CHECK(ParseRequest(R"({"id":7,"cmd":"ping","body":{"x":)" + Nested(30) + "}}", &ok).ok());
}

TEST_CASE("json: a null member counts as absent for every field reader") {
  rapidjson::Document doc;
  REQUIRE(ParseJson(R"({"s":null,"n":null,"o":null})", &doc).ok());
  Fields f(&doc);
  std::string s = "kept";
  uint64_t n = 7;
  CHECK(f.OptionalString("s", &s).ok());
  CHECK(s == "kept");
  CHECK(f.OptionalUint64("n", &n).ok());
  CHECK(n == 7);
  CHECK(f.OptionalObject("o", &s).ok());
  CHECK_FALSE(f.Has("s"));
  CHECK(f.Get("o") == nullptr);
  Status missing = f.RequiredString("s", &s);
  CHECK(missing.message() == "missing field 's'");
}

}  // namespace
}  // namespace im::internal
