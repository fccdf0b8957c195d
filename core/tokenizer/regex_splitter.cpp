#include "core/tokenizer/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <stdexcept>

#include "core/tokenizer/pretokenizer.h"
#include "core/tokenizer/unicode_classes.h"
#include "core/tokenizer/utf8.h"

namespace halo::tok {

namespace {

// The pattern's character classes in PCRE2 syntax, each matching one code point (arrays, not std::string, so they
// need no dynamic initialisation).
constexpr char kHanPcre[] = R"(\p{sc:Han})";  // sc: is Script; a bare \p{Han} is Script_Extensions in PCRE2
constexpr char kUpperPcre[] = R"((?:(?!\p{sc:Han})[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]))";
constexpr char kLowerPcre[] = R"((?:(?!\p{sc:Han})[\p{Ll}\p{Lm}\p{Lo}\p{M}]))";

pcre2_code* compile(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw std::runtime_error("PCRE2 rejected the pre-tokenizer pattern " + pattern + " at offset " +
                                 std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    return code;
}

// Sets `flag` on every code point cps[i] (encoded in `text` at offsets[i]) that the one-character class `cls`
// matches. One match per code point: `cls+` would overflow PCRE2's JIT stack on long runs of the lookahead classes.
void mark_class(const std::string& cls, uint8_t flag, const std::string& text, const std::vector<uint32_t>& offsets,
                const std::vector<uint32_t>& cps, std::vector<uint8_t>& flags) {
    pcre2_code* code = compile(cls);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    size_t pos = 0;
    int rc = 0;
    while (pos < text.size()) {
        rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, PCRE2_NO_UTF_CHECK, md,
                         nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t i = size_t(std::lower_bound(offsets.begin(), offsets.end(), uint32_t(ov[0])) - offsets.begin());
        flags[cps[i]] |= flag;
        pos = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        throw std::runtime_error("PCRE2 failed (error " + std::to_string(rc) + ") matching the class " + cls +
                                 " over every code point");
}

// Code point at byte i of well-formed UTF-8 `s`; advances i past it.
uint32_t next_code_point(std::string_view s, size_t& i) {
    const auto b = uint8_t(s[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? b : len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
    for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3F);
    i += len;
    return cp;
}

}  // namespace

const std::string& RegexSplitter::pattern() {
    static const std::string p = [] {
        const std::string contraction = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)";
        const std::string prefix = R"([^\r\n\p{L}\p{N}]?)";
        const std::string ws = kWhiteSpaceClass;                  // \s
        const std::string ws_body = ws.substr(1, ws.size() - 2);  // its members, to build [^\s...]
        return std::string(kHanPcre) + "+" +                                       //
               "|" + prefix + kUpperPcre + "*" + kLowerPcre + "+" + contraction +  //
               "|" + prefix + kUpperPcre + "+" + kLowerPcre + "*" + contraction +  //
               R"(|\p{N}{1,3})" +                                                  //
               "| ?[^" + ws_body + R"(\p{L}\p{N}]+[\r\n]*)" +                      //
               "|" + ws + R"(*[\r\n]+)" +                                          //
               "|" + ws + "+(?![^" + ws_body + "])" +                              // \s+(?!\S)
               "|" + ws + "+";
    }();
    return p;
}

const std::vector<uint32_t>& RegexSplitter::class_mismatches() {
    static const std::vector<uint32_t> mismatches = [] {
        std::string text;  // every scalar value, in order
        std::vector<uint32_t> offsets, cps;
        text.reserve(1u << 22);
        for (uint32_t cp = 0; cp < 0x110000; ++cp) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            offsets.push_back(uint32_t(text.size()));
            cps.push_back(cp);
            append_utf8(text, cp);
        }
        std::vector<uint8_t> pcre2_flags(0x110000, 0);
        mark_class(kHanPcre, kHan, text, offsets, cps, pcre2_flags);
        mark_class(kUpperPcre, kUpperClass, text, offsets, cps, pcre2_flags);
        mark_class(kLowerPcre, kLowerClass, text, offsets, cps, pcre2_flags);
        mark_class(R"(\p{L})", kLetter, text, offsets, cps, pcre2_flags);
        mark_class(R"(\p{N})", kNumber, text, offsets, cps, pcre2_flags);
        mark_class(kWhiteSpaceClass, kSpace, text, offsets, cps, pcre2_flags);
        constexpr uint8_t kCompared = kHan | kUpperClass | kLowerClass | kLetter | kNumber | kSpace;
        const CharClasses& classes = CharClasses::get();
        std::vector<uint32_t> out;
        for (uint32_t cp : cps)
            if ((classes.of(cp) & kCompared) != pcre2_flags[cp]) out.push_back(cp);
        return out;
    }();
    return mismatches;
}

struct RegexSplitter::Impl {
    pcre2_code* code = nullptr;
    pcre2_match_data* match = nullptr;
};

RegexSplitter::RegexSplitter() : impl_(std::make_unique<Impl>()) {
    impl_->code = compile(pattern());
    impl_->match = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
}

RegexSplitter::~RegexSplitter() {
    pcre2_match_data_free(impl_->match);
    pcre2_code_free(impl_->code);
}

bool RegexSplitter::agrees_on_classes(std::string_view text) {
    const std::vector<uint32_t>& mismatches = class_mismatches();
    for (size_t i = 0; i < text.size();) {
        const uint32_t cp = next_code_point(text, i);
        if (cp >= 0x80 && std::binary_search(mismatches.begin(), mismatches.end(), cp)) return false;
    }
    return true;
}

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
    std::vector<std::string_view> pieces;
    for (const ByteSpan& span : split_slices(text)) {
        const std::string_view slice = text.substr(span.begin, span.end - span.begin);
        size_t pos = 0;
        while (pos < slice.size()) {
            const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(slice.data()), slice.size(), pos,
                                       PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, impl_->match, nullptr);
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(impl_->match);
            if (rc < 0 || ov[1] <= pos)
                throw std::runtime_error("the PCRE2 pre-tokenizer found no piece at byte " + std::to_string(pos) +
                                         " of a slice; the pattern should match every character");
            pieces.push_back(slice.substr(pos, ov[1] - pos));
            pos = ov[1];
        }
    }
    return pieces;
}

}  // namespace halo::tok
