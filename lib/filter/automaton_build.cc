// Compiling a words list into an Automaton: normalisation, symbols, the per-code-point table,
// the trie laid out as a double array, and the failure links.

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "filter/automaton.h"
#include "filter/normalizer.h"

namespace im {
namespace internal {
namespace {

// The free slots of the double array as a union-find "next free slot at or after i", so placing
// a state costs nearly O(1) even when the array's front is packed.
class FreeSlots {
 public:
  int32_t Find(int32_t i) {
    Grow(i + 1);
    while (next_[i] != i) {
      next_[i] = next_[next_[i]];  // path halving
      i = next_[i];
    }
    return i;
  }
  void Occupy(int32_t i) {
    Grow(i + 2);
    next_[i] = i + 1;
  }

 private:
  void Grow(int32_t size) {
    for (auto k = static_cast<int32_t>(next_.size()); k < size; ++k) next_.push_back(k);
  }
  std::vector<int32_t> next_;
};

}  // namespace

std::shared_ptr<const Automaton> Automaton::Build(const std::vector<std::string>& words) {
  std::shared_ptr<Automaton> a(new Automaton());
  std::vector<std::vector<uint32_t>> sequences;
  std::unordered_set<std::string> seen;
  std::unordered_map<uint32_t, size_t> frequency;
  std::vector<NormChar> norm;
  for (const std::string& w : words) {
    if (!NormalizeText(w, &norm)) continue;  // the caller validated; never index garbage
    std::vector<uint32_t> cps;
    std::vector<uint8_t> seps;
    bool sep = false;
    for (const NormChar& c : norm) {
      if (c.separator) {
        sep = !cps.empty();
        continue;
      }
      cps.push_back(c.cp);
      seps.push_back(sep ? 1 : 0);
      sep = false;
    }
    if (cps.empty() || cps.size() > kMaxWordCodePoints) continue;
    std::string key(reinterpret_cast<const char*>(cps.data()), cps.size() * sizeof(uint32_t));
    key.append(seps.begin(), seps.end());
    if (!seen.insert(std::move(key)).second) continue;

    Pattern p;
    p.word = w;
    p.length = static_cast<uint32_t>(cps.size());
    p.seps = static_cast<uint32_t>(a->sep_before_.size());
    p.first_word = IsWordChar(cps.front());
    p.last_word = IsWordChar(cps.back());
    a->sep_before_.insert(a->sep_before_.end(), seps.begin(), seps.end());
    a->patterns_.push_back(std::move(p));
    a->max_length_ = std::max(a->max_length_, cps.size());
    for (uint32_t cp : cps) ++frequency[cp];
    sequences.push_back(std::move(cps));
  }

  // The most frequent code points get the smallest symbols: their states then crowd the front
  // of the double array, which keeps it dense.
  std::vector<std::pair<size_t, uint32_t>> by_frequency;
  by_frequency.reserve(frequency.size());
  for (const auto& [cp, n] : frequency) by_frequency.emplace_back(n, cp);
  std::sort(by_frequency.begin(), by_frequency.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  });
  a->symbols_.reserve(by_frequency.size());
  for (size_t i = 0; i < by_frequency.size(); ++i) {
    a->symbols_.emplace(by_frequency[i].second, static_cast<uint32_t>(i + 1));
  }

  a->BuildCharTable();
  a->BuildTrie(sequences);
  return a;
}

uint32_t Automaton::EncodeNormChar(bool separator, bool word, uint32_t cp) const {
  if (separator) return kSeparator;
  auto it = symbols_.find(cp);
  const uint32_t symbol = it == symbols_.end() ? 0 : it->second;
  return kContent | (word ? kWordBit : 0) | (symbol << kPayloadShift);
}

uint32_t Automaton::EntryFor(uint32_t cp, std::vector<uint32_t>* expansion) const {
  NormChar buf[kMaxExpansion];
  const size_t n = NormalizeCodePoint(cp, buf);
  if (n == 0) return kIgnore | (IsCombiningMark(cp) ? kMarkBit : 0);
  if (n == 1) return EncodeNormChar(buf[0].separator, buf[0].word, buf[0].cp);
  const auto index = static_cast<uint32_t>(expansion->size());
  expansion->push_back(static_cast<uint32_t>(n));
  for (size_t k = 0; k < n; ++k) {
    expansion->push_back(EncodeNormChar(buf[k].separator, buf[k].word, buf[k].cp));
  }
  return kMulti | (index << kPayloadShift);
}

uint32_t Automaton::AstralEntry(uint32_t cp, std::vector<uint32_t>* expansion) const {
  expansion->clear();
  return EntryFor(cp, expansion);
}

void Automaton::BuildCharTable() {
  // Calling utf8proc for every BMP code point takes a few milliseconds per build and saves the
  // hot loop from ever calling it outside the astral planes.
  char_table_.assign(0x10000, kIgnore);
  for (uint32_t cp = 0; cp < 0x10000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // surrogates never decode
    char_table_[cp] = EntryFor(cp, &expansions_);
  }
}

void Automaton::BuildTrie(const std::vector<std::vector<uint32_t>>& words) {
  // The trie, with edges in a hash map while inserting, then as sorted per-node lists.
  std::unordered_map<uint64_t, int32_t> edges;
  std::vector<int32_t> end_node(words.size());
  int32_t nodes = 1;
  for (size_t i = 0; i < words.size(); ++i) {
    int32_t node = 0;
    for (uint32_t cp : words[i]) {
      const uint64_t key = (static_cast<uint64_t>(node) << 32) | symbols_.at(cp);
      auto [it, inserted] = edges.emplace(key, nodes);
      if (inserted) ++nodes;
      node = it->second;
    }
    end_node[i] = node;
  }
  std::vector<size_t> kid_begin(static_cast<size_t>(nodes) + 1, 0);
  for (const auto& e : edges) ++kid_begin[(e.first >> 32) + 1];
  for (int32_t n = 0; n < nodes; ++n) kid_begin[n + 1] += kid_begin[n];
  std::vector<std::pair<int32_t, int32_t>> kids(edges.size());  // (symbol, node)
  {
    std::vector<size_t> fill(kid_begin.begin(), kid_begin.end() - 1);
    for (const auto& e : edges) {
      kids[fill[e.first >> 32]++] = {static_cast<int32_t>(e.first & 0xFFFFFFFF), e.second};
    }
  }
  for (int32_t n = 0; n < nodes; ++n) {
    std::sort(kids.begin() + kid_begin[n], kids.begin() + kid_begin[n + 1]);
  }

  // Lay the trie out breadth-first: each state's children go at base + symbol, at the first
  // base where all of them find free slots.
  const auto symbol_count = static_cast<int32_t>(symbols_.size());
  std::vector<int32_t> slot_of(nodes, -1);
  std::vector<int32_t> order{0};
  order.reserve(nodes);
  slot_of[0] = 0;
  slots_.assign(static_cast<size_t>(symbol_count) + 1, Slot{});
  FreeSlots free_slots;
  free_slots.Occupy(0);
  int32_t max_base = 0;
  for (size_t q = 0; q < order.size(); ++q) {
    const int32_t node = order[q];
    const size_t begin = kid_begin[node], end = kid_begin[node + 1];
    if (begin == end) continue;  // a leaf keeps base 0: base + symbol never checks back to it
    const int32_t first = kids[begin].first;
    int32_t base = 0;
    for (int32_t p = free_slots.Find(first);; p = free_slots.Find(p + 1)) {
      base = p - first;
      bool fits = true;
      for (size_t k = begin + 1; k < end && fits; ++k) {
        const size_t t = static_cast<size_t>(base + kids[k].first);
        fits = t >= slots_.size() || slots_[t].check == -1;
      }
      if (fits) break;
    }
    slots_[slot_of[node]].base2 = base * 2;
    max_base = std::max(max_base, base);
    for (size_t k = begin; k < end; ++k) {
      const int32_t t = base + kids[k].first;
      if (static_cast<size_t>(t) >= slots_.size()) slots_.resize(t + 1);
      slots_[t].check = slot_of[node];
      free_slots.Occupy(t);
      slot_of[kids[k].second] = t;
      order.push_back(kids[k].second);
    }
  }
  // Every base + symbol must index the array, so the hot loop needs no bounds check.
  const size_t size = static_cast<size_t>(max_base) + symbol_count + 1;
  if (slots_.size() < size) slots_.resize(size);

  first_pattern_.assign(slots_.size(), -1);
  report_.assign(slots_.size(), 0);
  for (size_t i = words.size(); i-- > 0;) {  // backwards, so each chain runs in list order
    const int32_t s = slot_of[end_node[i]];
    patterns_[i].next = first_pattern_[s];
    first_pattern_[s] = static_cast<int32_t>(i);
  }

  // Failure links, breadth-first so a state's failure target is always done before it.
  for (int32_t node : order) {
    const int32_t s = slot_of[node];
    for (size_t k = kid_begin[node]; k < kid_begin[node + 1]; ++k) {
      const int32_t symbol = kids[k].first;
      const int32_t t = slot_of[kids[k].second];
      int32_t fail = 0;
      if (s != 0) {
        for (int32_t f = slots_[s].fail;; f = slots_[f].fail) {
          const int32_t g = slots_[f].base() + symbol;
          if (slots_[g].check == f) {
            fail = g;
            break;
          }
          if (f == 0) break;
        }
      }
      slots_[t].fail = fail;
      report_[t] = first_pattern_[t] >= 0 ? t : report_[fail];
      if (report_[t] != 0) slots_[t].base2 |= 1;
    }
  }
}

}  // namespace internal
}  // namespace im
