// The Kimi (K2-family) pre-tokenizer: text -> slices -> pieces, exactly as tiktoken with the K2 pattern does it
// (golden README section 2, steps 1 and 3). This is a hand-written scanner over the character classes of
// unicode_classes.h; regex_splitter.h holds the same pattern run by PCRE2, used to cross-check it.
//
// The pattern, 8 alternatives tried in order at each position (leftmost-first, backtracking semantics):
//   1 [\p{Han}]+
//   2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   3 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   4 \p{N}{1,3}
//   5  ?[^\s\p{L}\p{N}]+[\r\n]*
//   6 \s*[\r\n]+
//   7 \s+(?!\S)
//   8 \s+
// Every function here runs in time linear in its input and is thread-safe. Inputs must be well-formed UTF-8
// (Tokenizer repairs its input first); ill-formed input is never read out of bounds, but its pieces are unspecified.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace halo::tok {

constexpr size_t kMaxWindowChars = 400'000;  // encode() first cuts text into windows of this many code points
constexpr size_t kMaxRunChars = 25'000;      // then cuts runs of (non-)whitespace longer than this

// A byte range [begin, end) of some text.
struct ByteSpan {
    size_t begin = 0;
    size_t end = 0;
};

// The slices of `text` (well-formed UTF-8): windows of kMaxWindowChars code points, each cut wherever a run of
// consecutive whitespace (Python str.isspace) or non-whitespace code points would exceed kMaxRunChars. Pieces never
// cross a slice boundary and the lookahead of alternative 7 ends at it. Empty text gives one empty slice.
std::vector<ByteSpan> split_slices(std::string_view text);

// End (byte offset into `slice`) of the piece that starts at `pos`; requires pos < slice.size() and `slice`
// well-formed UTF-8. Always > pos.
size_t next_piece_end(std::string_view slice, size_t pos);

// All pieces of `text` (well-formed UTF-8), over all its slices, no special-token handling. The pieces are views
// into `text` and concatenate to it.
std::vector<std::string_view> pre_tokenize(std::string_view text);

}  // namespace halo::tok
