#include "core/tokenizer/unicode_classes.h"

#include <algorithm>
#include <map>
#include <string>

#include "core/tokenizer/unicode_data.h"

namespace halo::tok {

namespace {

// The CharFlags that General_Category `gc` and the UCD properties `props` (kUcdHan, kUcdWhiteSpace) give.
uint8_t flags_of(GeneralCategory gc, uint8_t props) {
    using enum GeneralCategory;
    const bool mark = gc == Mn || gc == Mc || gc == Me;
    const bool han = props & kUcdHan;
    uint8_t f = 0;
    if (han) f |= kHan;
    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]] and [\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]
    if (!han && (gc == Lu || gc == Lt || gc == Lm || gc == Lo || mark)) f |= kUpperClass;
    if (!han && (gc == Ll || gc == Lm || gc == Lo || mark)) f |= kLowerClass;
    if (gc == Lu || gc == Ll || gc == Lt || gc == Lm || gc == Lo) f |= kLetter;
    if (gc == Nd || gc == Nl || gc == No) f |= kNumber;
    if (props & kUcdWhiteSpace) f |= kSpace | kPySpace;
    return f;
}

// Flags of every code point, index = code point.
std::vector<uint8_t> build_flags() {
    std::vector<uint8_t> flags(0x110000, 0);  // unassigned code points have no flags
    for (const UcdRange& r : ucd_ranges())
        std::fill(flags.begin() + r.first, flags.begin() + r.last + 1, flags_of(r.gc, r.props));
    for (uint32_t cp = 0x1C; cp <= 0x1F; ++cp) flags[cp] |= kPySpace;  // bidi class B or S, but not White_Space
    flags['\r'] |= kNewline;
    flags['\n'] |= kNewline;
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
