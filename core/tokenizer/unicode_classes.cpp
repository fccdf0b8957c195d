#include "core/tokenizer/unicode_classes.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tokenizer/utf8.h"

namespace halo::tok {

namespace {

// Unicode White_Space: a fixed list, stable since Unicode 6.3.
bool is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

// Planes 4..13, 15 and 16 hold only unassigned and private-use code points (no letters, digits, marks or
// spaces); everything else is scanned.
bool plane_has_classes(uint32_t plane) { return plane <= 3 || plane == 14; }

// Sets `flag` on every code point of `text` (code point i of `cps`) that `pattern` (a class followed by +)
// matches.
void mark_class(const char* pattern, uint8_t flag, const std::string& text, const std::vector<uint32_t>& offsets,
                const std::vector<uint32_t>& cps, std::vector<uint8_t>& flags) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (!re) throw std::runtime_error(std::string("PCRE2 rejected the tokenizer's class pattern ") + pattern);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
    size_t pos = 0;
    while (pos < text.size()) {
        const int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                                   PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        // offsets is sorted: find the code point index of the match start, then walk to its end.
        size_t idx = size_t(std::lower_bound(offsets.begin(), offsets.end(), uint32_t(ov[0])) - offsets.begin());
        for (; idx < cps.size() && offsets[idx] < ov[1]; ++idx) flags[cps[idx]] |= flag;
        pos = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

// Flags of every code point, index = code point.
std::vector<uint8_t> build_flags() {
    std::vector<uint8_t> flags(0x110000, 0);
    std::string text;
    std::vector<uint32_t> offsets, cps;
    text.reserve(1u << 21);
    for (uint32_t cp = 0; cp < 0x110000; ++cp) {
        if ((cp >= 0xD800 && cp <= 0xDFFF) || !plane_has_classes(cp >> 16)) continue;
        offsets.push_back(uint32_t(text.size()));
        cps.push_back(cp);
        append_utf8(text, cp);
    }
    mark_class("\\p{sc:Han}+", kHan, text, offsets, cps, flags);
    mark_class("[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+", kUpperClass, text, offsets, cps, flags);
    mark_class("[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+", kLowerClass, text, offsets, cps, flags);
    mark_class("\\p{L}+", kLetter, text, offsets, cps, flags);
    mark_class("\\p{N}+", kNumber, text, offsets, cps, flags);
    for (uint32_t cp = 0; cp < 0x110000; ++cp) {
        uint8_t& f = flags[cp];
        if (f & kHan) f &= uint8_t(~(kUpperClass | kLowerClass));  // the && [^\p{Han}] intersection
        if (is_white_space(cp)) f |= kSpace | kPySpace;
        if (cp >= 0x1C && cp <= 0x1F) f |= kPySpace;
        if (cp == '\r' || cp == '\n') f |= kNewline;
    }

    return flags;
}

}  // namespace

CharClasses::CharClasses() : stage1_(kNumBlocks, 0) {
    const std::vector<uint8_t> flags = build_flags();
    std::map<std::string, uint16_t> seen;  // block contents -> block index
    for (uint32_t b = 0; b < kNumBlocks; ++b) {
        const std::string block(flags.begin() + b * kBlockSize, flags.begin() + (b + 1) * kBlockSize);
        auto [it, inserted] = seen.emplace(block, uint16_t(seen.size()));
        if (inserted) stage2_.insert(stage2_.end(), block.begin(), block.end());
        stage1_[b] = it->second;
    }
    ascii_ = stage2_.data() + size_t(stage1_[0]) * kBlockSize;
}

const CharClasses& CharClasses::get() {
    static const CharClasses classes;
    return classes;
}

}  // namespace halo::tok
