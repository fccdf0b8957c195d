// The slice of the Unicode Character Database the tokenizer needs: General_Category, Script=Han and White_Space
// of every assigned code point, as sorted ranges. The table (unicode_data_gen.cpp) is generated from the UCD files
// by tools/unicode/gen_unicode_data.py, run by hand, and checked in; the build reads no UCD file.
// The version follows the reference tokenizer: tiktoken's regex-syntax uses UCD 16.0.0 (README.md says how to move).
#pragma once

#include <cstdint>
#include <span>

namespace halo::tok {

// Unicode General_Category values. The order is the generator's GENERAL_CATEGORIES list; Cn (unassigned) is 0.
enum class GeneralCategory : uint8_t {
    Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf,
    Cs, Co,
};

// Bits of UcdRange::props.
constexpr uint8_t kUcdHan = 1 << 0;         // Script=Han (Scripts.txt)
constexpr uint8_t kUcdWhiteSpace = 1 << 1;  // White_Space (PropList.txt)

// Code points first..last (inclusive) all have General_Category `gc` and the properties `props`.
struct UcdRange {
    uint32_t first;
    uint32_t last;
    GeneralCategory gc;
    uint8_t props;
};

// The UCD version the table was generated from, e.g. "16.0.0".
extern const char kUcdVersion[];

// Every assigned code point's range, sorted by `first`, disjoint. A code point in no range is unassigned (Cn, no
// properties). Static storage; any thread may read it.
std::span<const UcdRange> ucd_ranges();

}  // namespace halo::tok
