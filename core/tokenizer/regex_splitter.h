// The K2 pre-tokenizer pattern run by PCRE2 (JIT), with the class intersection `[A&&[^\p{Han}]]` rewritten as
// `(?:(?!\p{sc:Han})[A])`, and \s / \S spelled out as Unicode White_Space (PCRE2's \s also matches U+180E). It is an independent second implementation of pretokenizer.h, kept as a debug switch:
// tests and the encoder fuzz target compare the two piece by piece. It is slower (one PCRE2 call per piece) and can
// backtrack quadratically on long letter runs, so the encoder never uses it.
#pragma once

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

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace halo::tok
