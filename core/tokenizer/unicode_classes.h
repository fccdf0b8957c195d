// Per-code-point character classes used by the pre-tokenizer pattern (KIMI_LINEAR.md 7.2, golden README 2.3).
// Built on first use from the checked-in UCD table of unicode_data.h (Unicode 16.0.0, the version of the `regex`
// crate's tables that tiktoken runs on), then looked up in a two-level table. No regex engine is involved, so the
// classes do not follow whatever Unicode version the system's PCRE2 happens to carry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace halo::tok {

// Bit flags for one code point.
enum CharFlag : uint8_t {
    // Script=Han, not Script_Extensions: regex-syntax looks a bare \p{Han} up as a binary property, then a
    // General_Category, then a Script (regex-syntax/src/unicode.rs, canonical_binary); Script_Extensions only when
    // spelled \p{scx=Han}. So U+3001 and U+3006 (Script=Common, Script_Extensions has Han) are not Han, as the golden
    // cases show ("と〆とヶ" is one piece).
    kHan = 1 << 0,
    kUpperClass = 1 << 1,  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]
    kLowerClass = 1 << 2,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]
    kLetter = 1 << 3,      // \p{L}
    kNumber = 1 << 4,      // \p{N} = Nd + Nl + No
    kSpace = 1 << 5,       // \s = Unicode White_Space (regex-syntax's perl_space table)
    kPySpace = 1 << 6,     // Python str.isspace() (Zs or bidi WS/B/S) = White_Space plus U+001C..U+001F; cuts runs
    kNewline = 1 << 7,     // \r or \n
};

// The table: immutable once built, so any thread may read it.
class CharClasses {
public:
    // Builds the table on first use (thread-safe) and returns it.
    static const CharClasses& get();

    // Flags of code point `cp`; 0 above U+10FFFF and for unassigned code points.
    uint8_t of(uint32_t cp) const {
        if (cp >= 0x110000) return 0;
        return stage2_[size_t(stage1_[cp >> kBlockBits]) * kBlockSize + (cp & (kBlockSize - 1))];
    }
    // Flags of an ASCII byte (< 0x80).
    uint8_t ascii(uint8_t b) const { return ascii_[b]; }

    static constexpr uint32_t kBlockBits = 8;
    static constexpr uint32_t kBlockSize = 1u << kBlockBits;
    static constexpr uint32_t kNumBlocks = 0x110000u >> kBlockBits;

private:
    CharClasses();
    CharClasses(const CharClasses&) = delete;
    CharClasses& operator=(const CharClasses&) = delete;
    std::vector<uint16_t> stage1_;  // [kNumBlocks]: index of the 256-entry block of cp >> 8 in stage2_
    std::vector<uint8_t> stage2_;   // deduplicated blocks of flags
    const uint8_t* ascii_ = nullptr;  // the block of U+0000..U+00FF inside stage2_
};

}  // namespace halo::tok
