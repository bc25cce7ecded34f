#include "filter/normalizer.h"

#include <utf8proc.h>

namespace im {
namespace internal {
namespace {

constexpr utf8proc_option_t kNormalizeOptions = static_cast<utf8proc_option_t>(
    UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);

bool IsSeparatorCategory(utf8proc_category_t c) {
  switch (c) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
      return true;
    default:
      return false;
  }
}

bool IsVanishingCategory(utf8proc_category_t c) {
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF;
}

bool IsLatinBlock(uint32_t cp) {
  return cp < 0x0300 ||                       // Basic Latin .. IPA and spacing modifiers
         (cp >= 0x1D00 && cp <= 0x1DBF) ||    // phonetic extensions
         (cp >= 0x1E00 && cp <= 0x1EFF) ||    // Latin extended additional
         (cp >= 0x2C60 && cp <= 0x2C7F) ||    // Latin extended-C
         (cp >= 0xA720 && cp <= 0xA7FF) ||    // Latin extended-D
         (cp >= 0xAB30 && cp <= 0xAB6F) ||    // Latin extended-E
         (cp >= 0x10780 && cp <= 0x107BF) ||  // Latin extended-F
         (cp >= 0x1DF00 && cp <= 0x1DFFF);    // Latin extended-G
}

}  // namespace

bool IsWordChar(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  }
  const utf8proc_category_t c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  if (c == UTF8PROC_CATEGORY_ND) return true;
  const bool letter = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
  return letter && IsLatinBlock(cp);
}

bool IsCombiningMark(uint32_t cp) {
  const utf8proc_category_t c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME;
}

size_t NormalizeCodePoint(uint32_t cp, NormChar out[kMaxExpansion]) {
  utf8proc_int32_t buf[kMaxExpansion];
  int boundclass = UTF8PROC_BOUNDCLASS_START;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf,
                                               kMaxExpansion, kNormalizeOptions, &boundclass);
  if (n < 0 || n > static_cast<utf8proc_ssize_t>(kMaxExpansion)) {
    // Cannot happen with Unicode as of utf8proc 2.x; keeping the code point itself is the
    // conservative answer (it still matches itself).
    buf[0] = static_cast<utf8proc_int32_t>(cp);
    n = 1;
  }
  size_t count = 0;
  for (utf8proc_ssize_t k = 0; k < n; ++k) {
    const uint32_t c = static_cast<uint32_t>(buf[k]);
    const utf8proc_category_t cat = utf8proc_category(buf[k]);
    if (IsVanishingCategory(cat)) continue;
    NormChar& o = out[count++];
    o.cp = c;
    o.separator = IsSeparatorCategory(cat);
    o.word = !o.separator && IsWordChar(c);
  }
  return count;
}

bool NormalizeText(std::string_view word, std::vector<NormChar>* out) {
  out->clear();
  NormChar buf[kMaxExpansion];
  for (size_t i = 0; i < word.size();) {
    uint32_t cp;
    const size_t len = DecodeUtf8(word, i, &cp);
    if (len == 0) return false;
    const size_t n = NormalizeCodePoint(cp, buf);
    out->insert(out->end(), buf, buf + n);
    i += len;
  }
  return true;
}

}  // namespace internal
}  // namespace im
