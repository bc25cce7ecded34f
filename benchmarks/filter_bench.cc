// filter_bench: WordFilter throughput on one core, in the style of LevelDB's db_bench.
//
// Builds a deterministic mixed Chinese/English chat corpus (about --mb MB, cut into messages of
// 20-400 bytes) and a 10,000-word list (CJK and Latin words), then prints one row per case:
//
//   case  mode  messages  matched  best MB/s  mean MB/s  wall MB/s  ns/msg
//
// "clean" is allow-heavy text: no listed word was put in it (the matched column shows what
// occurs by chance). "dirty" is the same text with listed words injected into 2% of the
// messages, a few hundred distinct words in all. "one clean"/"one dirty" mask the whole corpus
// as a single string. MB/s counts input bytes per second of this thread's CPU time: "best" is
// the fastest pass, "mean" all passes; "wall" counts wall time, which on a busy machine
// includes other processes' turns. Each case repeats for about --seconds of CPU time.
//
// Usage: filter_bench [--mb N] [--seconds N]
// Exit status: always 0 (benchmarks never fail a build).

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "im/content_filter.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kWords = 10000;
constexpr size_t kCjkPool = 3000;  // distinct Chinese characters in the text

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Zipf-like draws, so a few characters and words are common, as in real chat.
class Zipf {
 public:
  Zipf(size_t n, std::mt19937* rng) : rng_(rng) {
    double sum = 0;
    for (size_t i = 1; i <= n; ++i) cdf_.push_back(sum += 1.0 / static_cast<double>(i));
    for (double& c : cdf_) c /= sum;
  }
  size_t Next() {
    const double u = std::uniform_real_distribution<double>(0, 1)(*rng_);
    size_t lo = 0, hi = cdf_.size() - 1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (cdf_[mid] < u)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }

 private:
  std::vector<double> cdf_;
  std::mt19937* rng_;
};

struct Corpus {
  std::vector<std::string> clean;
  std::vector<std::string> dirty;
  std::vector<std::string> words;
  size_t bytes = 0;
  size_t injected_words = 0;  // distinct listed words put into `dirty`
};

std::string LatinWord(std::mt19937* rng, size_t min_len) {
  std::string w;
  const size_t len = min_len + (*rng)() % 6;
  for (size_t i = 0; i < len; ++i) w.push_back(static_cast<char>('a' + (*rng)() % 26));
  return w;
}

Corpus MakeCorpus(size_t target_bytes) {
  std::mt19937 rng(20240601);
  std::vector<uint32_t> cjk;  // a fixed spread of the CJK unified block
  for (size_t i = 0; i < kCjkPool; ++i) cjk.push_back(0x4E00 + static_cast<uint32_t>(i * 6 + 1));
  std::vector<std::string> vocabulary;
  for (int i = 0; i < 2000; ++i) vocabulary.push_back(LatinWord(&rng, 2));
  const char* punctuation[] = {"，", "。", "！", "？", ", ", ". ", "! ", "~", "…", "😀", "👍"};
  Zipf chars(kCjkPool, &rng), vocab(vocabulary.size(), &rng);

  Corpus c;
  // Half CJK words, half Latin words of 4-9 letters that the vocabulary never produces by
  // itself (they start with 'q' and end with 'z'). CJK words of 3-4 characters start with a
  // common character, so the automaton leaves its root often; 2-character words use random
  // characters, or the "clean" text would match by chance all the time.
  for (size_t i = 0; i < kWords; ++i) {
    std::string w;
    if (i % 2 == 0) {
      const unsigned r = rng() % 10;
      const size_t len = r < 2 ? 2 : r < 7 ? 3 : 4;
      for (size_t k = 0; k < len; ++k) {
        AppendUtf8(cjk[k == 0 && len > 2 ? chars.Next() : rng() % kCjkPool], &w);
      }
    } else {
      w = "q" + LatinWord(&rng, 2) + "z";
    }
    c.words.push_back(w);
  }

  while (c.bytes < target_bytes) {
    std::string m;
    const size_t len = 20 + rng() % 380;
    while (m.size() < len) {
      const unsigned r = rng() % 100;
      if (r < 62) {
        AppendUtf8(cjk[chars.Next()], &m);
      } else if (r < 88) {
        if (!m.empty() && m.back() != ' ') m.push_back(' ');
        std::string w = vocabulary[vocab.Next()];
        if (rng() % 10 == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
        m += w + " ";
      } else if (r < 96) {
        m += punctuation[rng() % (sizeof(punctuation) / sizeof(punctuation[0]))];
      } else {
        m += std::to_string(rng() % 1000);
      }
    }
    c.bytes += m.size();
    c.clean.push_back(m);
  }
  // The dirty copy: 2% of the messages get one of 300 listed words, between two tokens.
  std::vector<bool> used(300, false);
  c.dirty = c.clean;
  for (std::string& m : c.dirty) {
    if (rng() % 50 != 0) continue;
    const size_t w = rng() % 300;
    used[w] = true;
    const std::string& word = c.words[w * (kWords / 300)];
    size_t at = m.find(' ', rng() % m.size());
    if (at == std::string::npos) at = m.size();
    m.insert(at, " " + word + " ");
  }
  for (bool u : used) c.injected_words += u;
  return c;
}

struct Row {
  size_t matched = 0;
  double best_mb_per_s = 0;  // the fastest pass, by CPU time
  double mean_mb_per_s = 0;  // all passes, by CPU time
  double wall_mb_per_s = 0;  // all passes, by wall time
  double ns_per_msg = 0;     // all passes, by CPU time
};

// This thread's CPU time: on a shared machine wall time also counts other processes' turns.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Row Measure(const im::WordFilter& filter, const std::vector<std::string>& messages,
            double seconds) {
  size_t bytes = 0;
  for (const std::string& m : messages) bytes += m.size();
  Row row;
  size_t passes = 0;
  double best = 1e9, cpu = 0;
  volatile size_t sink = 0;
  const auto start = Clock::now();
  do {
    const double pass_start = CpuSeconds();
    size_t matched = 0;
    for (const std::string& m : messages) {
      im::FilterDecision d = filter.Check("bench", m);
      matched += d.action != im::FilterAction::kAllow;
      sink = sink + d.text.size();
    }
    const double pass = CpuSeconds() - pass_start;
    best = std::min(best, pass);
    cpu += pass;
    row.matched = matched;
    ++passes;
  } while (cpu < seconds || passes < 3);
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double total = static_cast<double>(bytes) * static_cast<double>(passes);
  row.best_mb_per_s = static_cast<double>(bytes) / best / 1e6;
  row.mean_mb_per_s = total / cpu / 1e6;
  row.wall_mb_per_s = total / wall / 1e6;
  row.ns_per_msg = cpu * 1e9 / static_cast<double>(messages.size() * passes);
  return row;
}

void PrintRow(const char* name, const char* mode, size_t messages, const Row& row) {
  std::printf("%-10s %-7s %9zu %8zu %9.1f %9.1f %9.1f %9.0f\n", name, mode, messages, row.matched,
              row.best_mb_per_s, row.mean_mb_per_s, row.wall_mb_per_s, row.ns_per_msg);
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 8, seconds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--mb") == 0) mb = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
  }
  Corpus c = MakeCorpus(static_cast<size_t>(mb * 1e6));

  double build_ms = 1e9;
  std::shared_ptr<im::WordFilter> reject, mask;
  for (int i = 0; i < 5; ++i) {  // best of five: the first run also warms the allocator
    const auto start = Clock::now();
    auto r = im::NewWordFilter(c.words, im::FilterMode::kReject);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!r.ok()) {
      std::printf("build failed: %s\n", r.status().ToString().c_str());
      return 0;
    }
    if (ms < build_ms) build_ms = ms;
    reject = r.value();
  }
  auto m = im::NewWordFilter(c.words, im::FilterMode::kMask);
  if (!m.ok()) return 0;
  mask = m.value();

  std::printf(
      "corpus: %.1f MB in %zu messages (mixed Chinese/English); words: %zu listed, "
      "%zu after normalisation; %zu distinct words injected into 2%% of \"dirty\"\n",
      c.bytes / 1e6, c.clean.size(), c.words.size(), reject->word_count(), c.injected_words);
  std::printf("build: %.1f ms for %zu words (best of 5)\n\n", build_ms, c.words.size());
  std::printf("%-10s %-7s %9s %8s %9s %9s %9s %9s\n", "case", "mode", "messages", "matched",
              "best MB/s", "mean MB/s", "wall MB/s", "ns/msg");
  const struct {
    const char* name;
    const im::WordFilter* filter;
    const char* mode;
    const std::vector<std::string>* messages;
  } cases[] = {
      {"clean", reject.get(), "reject", &c.clean},
      {"clean", mask.get(), "mask", &c.clean},
      {"dirty", reject.get(), "reject", &c.dirty},
      {"dirty", mask.get(), "mask", &c.dirty},
  };
  for (const auto& k : cases) {
    PrintRow(k.name, k.mode, k.messages->size(), Measure(*k.filter, *k.messages, seconds));
  }
  // One long text: the allow path over the clean corpus, masking over the dirty one (a reject
  // scan of the dirty text would stop at its first match).
  std::string clean_text, dirty_text;
  for (const std::string& msg : c.clean) clean_text += msg + "\n";
  for (const std::string& msg : c.dirty) dirty_text += msg + "\n";
  PrintRow("one clean", "mask", 1, Measure(*mask, {clean_text}, seconds));
  PrintRow("one dirty", "mask", 1, Measure(*mask, {dirty_text}, seconds));
  return 0;
}
