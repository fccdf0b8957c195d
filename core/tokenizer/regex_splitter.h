// The K2 pre-tokenizer pattern run by PCRE2 (JIT), with the class intersection `[A&&[^\p{Han}]]` rewritten as
// `(?:(?!\p{sc:Han})[A])`, and \s / \S spelled out as Unicode White_Space (PCRE2's \s also matches U+180E). It is an
// independent second implementation of pretokenizer.h, kept as a debug switch: tests and the encoder fuzz target
// compare the two piece by piece. It is slower (one PCRE2 call per piece) and can backtrack quadratically on long
// letter runs, so the encoder never uses it.
//
// Its \p{...} classes come from PCRE2's own Unicode tables (Unicode 14.0 in PCRE2 10.42), not from unicode_data.h
// (16.0.0, what tiktoken uses), so the character data stays independent too. The price: on code points whose
// classes differ between the two versions (class_mismatches(), all of them assigned in one version only) the
// engines may split differently, so a comparison must skip texts that hold one (agrees_on_classes()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace halo::tok {

class RegexSplitter {
public:
    RegexSplitter();  // compiles the pattern; throws std::runtime_error if PCRE2 lacks Unicode support
    ~RegexSplitter();
    RegexSplitter(const RegexSplitter&) = delete;
    RegexSplitter& operator=(const RegexSplitter&) = delete;

    // Pieces of `text` (well-formed UTF-8) over the slices of split_slices(), like pre_tokenize(). Not
    // thread-safe (the match data is shared); use one RegexSplitter per thread.
    std::vector<std::string_view> split(std::string_view text) const;

    // Unicode White_Space as a PCRE2 class: what \s means in the K2 pattern.
    static constexpr const char* kWhiteSpaceClass =
        "[\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]";

    // The pattern as PCRE2 sees it.
    static const std::string& pattern();

    // The code points (sorted) where the pattern's classes under PCRE2's Unicode data differ from CharClasses
    // in any of kHan, kUpperClass, kLowerClass, kLetter, kNumber, kSpace. Computed on first use by matching each
    // class over every code point (about 0.15 s); thread-safe.
    static const std::vector<uint32_t>& class_mismatches();

    // True when `text` (well-formed UTF-8) holds no code point of class_mismatches(): only then must split() and
    // pre_tokenize() agree.
    static bool agrees_on_classes(std::string_view text);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace halo::tok
