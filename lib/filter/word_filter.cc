// WordFilter: the words file, reloading, and the automaton swap. Matching lives in
// filter/automaton.h.

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "filter/automaton.h"
#include "filter/normalizer.h"
#include "im/content_filter.h"

namespace im {
namespace {

using internal::Automaton;

// Validates one word: valid UTF-8 and not too long once normalised. `where` names it.
Status CheckWord(std::string_view word, const std::string& where) {
  std::vector<internal::NormChar> norm;
  if (!internal::NormalizeText(word, &norm)) {
    return Status::BadRequest(where + ": invalid UTF-8");
  }
  size_t length = 0;
  for (const internal::NormChar& c : norm) length += c.separator ? 0 : 1;
  if (length > internal::kMaxWordCodePoints) {
    return Status::BadRequest(where + ": longer than " +
                              std::to_string(internal::kMaxWordCodePoints) + " characters");
  }
  return Status::OK();
}

// Replace the file by renaming a complete new one over it: a Reload that catches a half-written
// file compiles the half it sees.
Result<std::shared_ptr<const Automaton>> LoadWordsFile(const std::string& path) {
  std::error_code ec;
  // A directory opens and reads as empty; it must not pass for an empty list.
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::BadRequest("cannot read words file '" + path + "': not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::BadRequest("cannot read words file '" + path + "'");
  std::vector<std::string> words;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a BOM: "# ..."
    constexpr std::string_view kSpace = " \t\r\f\v";
    const size_t first = line.find_first_not_of(kSpace);
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first, line.find_last_not_of(kSpace) - first + 1);
    Status s = CheckWord(line, "words file '" + path + "' line " + std::to_string(number));
    if (!s.ok()) return s;
    words.push_back(std::move(line));
  }
  if (in.bad()) return Status::BadRequest("cannot read words file '" + path + "'");
  return Automaton::Build(words);
}

// Thread-safety: Check and word_count from any thread; Reload from any thread, one at a time
// (later calls wait). Check holds mu_ only to copy a pointer, never while a list compiles.
class WordFilterImpl final : public WordFilter {
 public:
  WordFilterImpl(std::string words_file, FilterMode mode,
                 std::shared_ptr<const Automaton> automaton)
      : words_file_(std::move(words_file)), mode_(mode), automaton_(std::move(automaton)) {}

  // The list is the same for every tenant.
  FilterDecision Check(std::string_view /*tenant*/, std::string_view text) const override {
    return Current()->Check(text, mode_);
  }

  Status Reload() override {
    if (words_file_.empty()) return Status::OK();  // a fixed list
    std::lock_guard<std::mutex> reloading(reload_mu_);
    Result<std::shared_ptr<const Automaton>> next = LoadWordsFile(words_file_);
    if (!next.ok()) return next.status();
    std::shared_ptr<const Automaton> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      old = std::exchange(automaton_, std::move(next).value());
    }
    // `old` dies here, outside mu_, or with the last Check still using it.
    return Status::OK();
  }

  size_t word_count() const override { return Current()->word_count(); }

 private:
  std::shared_ptr<const Automaton> Current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return automaton_;
  }

  const std::string words_file_;  // empty for a fixed list
  const FilterMode mode_;
  std::mutex reload_mu_;  // one Reload at a time
  mutable std::mutex mu_;
  std::shared_ptr<const Automaton> automaton_;  // guarded by mu_; never null
};

}  // namespace

Result<std::shared_ptr<WordFilter>> OpenWordFilter(WordFilterOptions options) {
  if (options.words_file.empty()) return Status::BadRequest("no words file given");
  Result<std::shared_ptr<const Automaton>> automaton = LoadWordsFile(options.words_file);
  if (!automaton.ok()) return automaton.status();
  return std::shared_ptr<WordFilter>(std::make_shared<WordFilterImpl>(
      std::move(options.words_file), options.mode, std::move(automaton).value()));
}

Result<std::shared_ptr<WordFilter>> NewWordFilter(const std::vector<std::string>& words,
                                                  FilterMode mode) {
  for (size_t i = 0; i < words.size(); ++i) {
    Status s = CheckWord(words[i], "word " + std::to_string(i));
    if (!s.ok()) return s;
  }
  return std::shared_ptr<WordFilter>(
      std::make_shared<WordFilterImpl>(std::string(), mode, Automaton::Build(words)));
}

}  // namespace im
