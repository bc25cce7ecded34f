#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "im/content_filter.h"

using im::FilterAction;
using im::FilterDecision;
using im::FilterMode;
using im::WordFilter;

namespace {

std::shared_ptr<WordFilter> Make(const std::vector<std::string>& words, FilterMode mode) {
  auto filter = im::NewWordFilter(words, mode);
  REQUIRE(filter.ok());
  return filter.value();
}

const std::vector<std::string> kWords = {"fuck",           "敏感词", "ass", "cunt",
                                         "son of a bitch", "off",    "씨발"};

// A temporary words file, removed at the end of the test.
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/word_filter_test_XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path_ = name;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  void Write(const std::string& content) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << content;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("word filter: evasions are rejected") {
  auto filter = Make(kWords, FilterMode::kReject);
  struct Case {
    const char* text;
    const char* word;
  };
  const Case cases[] = {
      {"fuck", "fuck"},
      {"ＦＵＣＫ", "fuck"},
      {"FuCk you", "fuck"},
      {"what the f.u.c.k?", "fuck"},
      {"f u c k", "fuck"},
      {"f*u*c*k", "fuck"},
      {"F-U-C-K!!!", "fuck"},
      {"(fuck)", "fuck"},
      {"ｆｕｃｋ", "fuck"},
      {"\U0001D41F\U0001D42E\U0001D41C\U0001D424", "fuck"},  // mathematical bold
      {"ⓕⓤⓒⓚ", "fuck"},
      {"fu\u0301ck", "fuck"},        // u + combining acute
      {"f\u00FAck", "fuck"},         // precomposed ú
      {"fu\u00ADck", "fuck"},        // soft hyphen
      {"f\u200Bu\u200Dck", "fuck"},  // zero-width space and joiner
      {"fuck\u0301", "fuck"},        // a trailing mark
      {"这是fuck啊", "fuck"},
      {"敏感词", "敏感词"},
      {"敏\u200B感词", "敏感词"},
      {"敏 感 词", "敏感词"},
      {"敏．感．词", "敏感词"},
      {"敏\U0001F600感词", "敏感词"},  // an emoji in between
      {"这是敏感词啊", "敏感词"},
      {"you ass", "ass"},
      {"a.s.s", "ass"},
      {"Scunthorpe is a cunt", "cunt"},
      {"son of a bitch", "son of a bitch"},
      {"sonofabitch", "son of a bitch"},
      {"Son Of A Bitch!", "son of a bitch"},
      {"씨발", "씨발"},
      {"씨 발", "씨발"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    FilterDecision d = filter->Check("t", c.text);
    CHECK(d.action == FilterAction::kReject);
    CHECK(d.matched == c.word);
    CHECK(d.text.empty());
  }
}

TEST_CASE("word filter: innocent text is allowed byte-identical") {
  auto filter = Make(kWords, FilterMode::kReject);
  auto mask = Make(kWords, FilterMode::kMask);
  const char* texts[] = {
      "class",
      "assignment",
      "passion",
      "bass guitar",
      "Scunthorpe",
      "embarrass",
      "fucking",  // whole words only: list "fucking" to catch it
      "fu ck",    // two words, neither spelled out nor listed that way
      "敏感",
      "感词",
      "敏",
      "",
      "hello world",
      "\U0001F600\U0001F44D\U0001F3FD hello 世界",  // emoji, one with a skin tone
      "Привет мир, こんにちは, مرحبا, שלום",
      "ＡＢＣ１２３",
      "café naïve",
      "tab\tand\r\nnewline",
  };
  for (const char* t : texts) {
    CAPTURE(t);
    for (const auto& f : {filter, mask}) {
      FilterDecision d = f->Check("t", t);
      CHECK(d.action == FilterAction::kAllow);
      CHECK(d.text.empty());  // the caller keeps its own bytes
      CHECK(d.matched.empty());
    }
  }
}

TEST_CASE("word filter: mask replaces each matched character by one star") {
  auto filter = Make(kWords, FilterMode::kMask);
  struct Case {
    const char* text;
    const char* masked;
  };
  const Case cases[] = {
      {"you fuck!", "you ****!"},
      {"ＦＵＣＫ off", "**** ***"},
      {"what the f.u.c.k?", "what the *.*.*.*?"},
      {"这是敏感词啊", "这是***啊"},
      {"敏\u200B感词", "*\u200B**"},  // the zero-width space stays
      {"fu\u0301ck", "****"},         // the mark goes with its letter
      {"o\uFB00", "**"},              // "oﬀ": the ligature is one character
      {"fuck and fuck", "**** and ****"},
      {"hello \U0001F600 ＦＵＣＫ world", "hello \U0001F600 **** world"},
      {"씨발놈", "**놈"},
      {"class ass", "class ***"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    FilterDecision d = filter->Check("t", c.text);
    CHECK(d.action == FilterAction::kMask);
    CHECK(d.text == c.masked);
    CHECK(!d.matched.empty());
  }
  // Overlapping words mask their union.
  auto overlap = Make({"敏感", "感词"}, FilterMode::kMask);
  FilterDecision d = overlap->Check("t", "说敏感词了");
  CHECK(d.action == FilterAction::kMask);
  CHECK(d.text == "说***了");
  CHECK(d.matched == "敏感");
}

TEST_CASE("word filter: invalid UTF-8 is rejected and never repaired") {
  for (FilterMode mode : {FilterMode::kReject, FilterMode::kMask}) {
    auto filter = Make(kWords, mode);
    const std::string texts[] = {"\xFF",         "abc\xC3",   "\xC0\xAF",
                                 "\xED\xA0\x80", "fuck \xFE", std::string("ok\0\xF5", 4)};
    for (const std::string& t : texts) {
      FilterDecision d = filter->Check("t", t);
      CHECK(d.action == FilterAction::kReject);
      CHECK(d.matched.empty());
      CHECK(d.text.empty());
    }
  }
  // A word list with invalid UTF-8 is refused.
  auto bad = im::NewWordFilter({"ok", "bad\xFF"}, FilterMode::kReject);
  CHECK(!bad.ok());
  CHECK(bad.status().code() == im::Code::kBadRequest);
}

TEST_CASE("word filter: an empty list allows everything") {
  for (const std::vector<std::string>& words :
       {std::vector<std::string>{}, std::vector<std::string>{"", "  ", "***", "\u200B"}}) {
    auto filter = Make(words, FilterMode::kReject);
    CHECK(filter->word_count() == 0);
    CHECK(filter->Check("t", "anything at all 敏感词").action == FilterAction::kAllow);
    CHECK(filter->Reload().ok());  // a fixed list: no-op
  }
  CHECK(Make({"Fuck", "FUCK", "ｆｕｃｋ"}, FilterMode::kReject)->word_count() == 1);
}

TEST_CASE("word filter: file loading and reload") {
  TempFile file;
  file.Write("\xEF\xBB\xBF# comment after a BOM\n\napple\r\n  敏感词  \n");
  auto opened = im::OpenWordFilter({file.path(), FilterMode::kReject});
  REQUIRE(opened.ok());
  std::shared_ptr<WordFilter> filter = opened.value();
  CHECK(filter->word_count() == 2);
  CHECK(filter->Check("t", "an apple").action == FilterAction::kReject);
  CHECK(filter->Check("t", "敏感词").action == FilterAction::kReject);
  CHECK(filter->Check("t", "a comment after a BOM").action == FilterAction::kAllow);

  file.Write("banana\n");
  REQUIRE(filter->Reload().ok());
  CHECK(filter->word_count() == 1);
  CHECK(filter->Check("t", "BANANA").matched == "banana");
  CHECK(filter->Check("t", "an apple").action == FilterAction::kAllow);

  // A broken file keeps the old list, and says which line is wrong.
  file.Write("cherry\nfine\nbad\xC3\n");
  im::Status s = filter->Reload();
  CHECK(s.code() == im::Code::kBadRequest);
  CHECK(std::string(s.message()).find("line 3") != std::string::npos);
  CHECK(filter->Check("t", "banana").action == FilterAction::kReject);
  CHECK(filter->Check("t", "cherry").action == FilterAction::kAllow);

  std::remove(file.path().c_str());
  CHECK(!filter->Reload().ok());
  CHECK(filter->Check("t", "banana").action == FilterAction::kReject);

  auto missing = im::OpenWordFilter({"/nonexistent/words.txt", FilterMode::kReject});
  CHECK(missing.status().code() == im::Code::kBadRequest);
  CHECK(!im::OpenWordFilter({"/tmp", FilterMode::kReject}).ok());  // a directory is no list
}

TEST_CASE("word filter: reload while other threads check") {
  TempFile file;
  file.Write("apple\n");
  auto opened = im::OpenWordFilter({file.path(), FilterMode::kMask});
  REQUIRE(opened.ok());
  std::shared_ptr<WordFilter> filter = opened.value();
  constexpr int kCheckers = 2;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> checks{0}, saw_apple_list{0}, saw_banana_list{0};
  std::vector<std::thread> checkers;
  for (int t = 0; t < kCheckers; ++t) {
    checkers.emplace_back([&] {
      ++ready;
      while (!stop) {
        FilterDecision d = filter->Check("t", "apple banana");
        // Either list is fine; a mix of both or a torn text is not.
        if (d.text == "***** banana") {
          ++saw_apple_list;
        } else if (d.text == "apple ******") {
          ++saw_banana_list;
        } else {
          ++bad;
        }
        ++checks;
      }
    });
  }
  while (ready.load() < kCheckers) std::this_thread::yield();  // reload while they check
  for (int i = 0; i < 20; ++i) {
    file.Write(i % 2 ? "apple\n" : "banana\n");
    CHECK(filter->Reload().ok());
    // Let the checkers run against each list before the next reload (10 s at most).
    const int target = checks.load() + kCheckers;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (checks.load() < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  stop = true;
  for (auto& t : checkers) t.join();
  CHECK(bad == 0);
  // Both lists were in force while the checkers ran: the reloads overlapped the checks.
  CHECK(saw_apple_list > 0);
  CHECK(saw_banana_list > 0);
  CHECK(checks >= 20 * kCheckers);
}

TEST_CASE("word filter: a 10000-word list agrees with a naive search") {
  // CJK words over a small alphabet overlap a lot, which exercises failure links.
  std::mt19937 rng(42);
  const std::vector<std::string> alphabet = {"的", "一", "是", "不", "了", "人", "我", "在",
                                             "有", "他", "这", "中", "大", "来", "上", "国"};
  auto random_cjk = [&](size_t n) {
    std::vector<size_t> s(n);
    for (size_t& c : s) c = rng() % alphabet.size();
    return s;
  };
  std::vector<std::vector<size_t>> words;
  std::vector<std::string> list;
  for (int i = 0; i < 10000; ++i) {
    words.push_back(random_cjk(4 + rng() % 4));
    std::string w;
    for (size_t c : words.back()) w += alphabet[c];
    list.push_back(w);
  }
  auto reject = Make(list, FilterMode::kReject);
  auto mask = Make(list, FilterMode::kMask);
  CHECK(reject->word_count() <= 10000);
  CHECK(reject->word_count() > 9500);
  int matched = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<size_t> text = random_cjk(5 + rng() % 40);
    std::vector<bool> covered(text.size(), false);
    bool any = false;
    for (const auto& w : words) {
      for (size_t i = 0; i + w.size() <= text.size(); ++i) {
        if (std::equal(w.begin(), w.end(), text.begin() + i)) {
          any = true;
          for (size_t k = 0; k < w.size(); ++k) covered[i + k] = true;
        }
      }
    }
    std::string input, expected;
    for (size_t i = 0; i < text.size(); ++i) {
      input += alphabet[text[i]];
      expected += covered[i] ? std::string("*") : alphabet[text[i]];
    }
    CAPTURE(input);
    CHECK((reject->Check("t", input).action == FilterAction::kReject) == any);
    FilterDecision d = mask->Check("t", input);
    CHECK((d.action == FilterAction::kMask) == any);
    if (any) CHECK(d.text == expected);
    matched += any;
  }
  CHECK(matched > 50);  // the comparison saw both outcomes
  CHECK(matched < 300);

  // Latin words at scale: listed words are found as whole words, never inside others.
  std::vector<std::string> latin;
  for (int i = 0; i < 10000; ++i) {
    std::string w = "w";
    for (int n = i; n > 0 || w.size() == 1; n /= 26) w += static_cast<char>('a' + n % 26);
    latin.push_back(w + "x");
  }
  auto words_filter = Make(latin, FilterMode::kReject);
  CHECK(words_filter->word_count() == 10000);
  for (int i = 0; i < 10000; i += 97) {
    CAPTURE(latin[i]);
    CHECK(words_filter->Check("t", "say " + latin[i] + " now").matched == latin[i]);
    CHECK(words_filter->Check("t", "say a" + latin[i] + " now").action == FilterAction::kAllow);
    CHECK(words_filter->Check("t", "say " + latin[i] + "s now").action == FilterAction::kAllow);
  }
}
