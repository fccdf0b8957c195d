// UTF-8 helpers shared by the tokenizer and the input checks: validation, decoding with U+FFFD replacement (WHATWG / Python
// errors="replace": each maximal ill-formed subsequence becomes one U+FFFD), and the incomplete tail a streaming
// decoder must hold back. All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace halo::input {

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

// Appends `bytes` decoded as UTF-8 to `out`, replacing each maximal ill-formed subsequence with U+FFFD
// (e4 b8 -> 1 U+FFFD, ed a0 80 -> 3, f0 9f 98 61 -> U+FFFD + "a", c0 af -> 2). An incomplete sequence at the end
// becomes one U+FFFD.
void append_utf8_replacing(std::string& out, std::string_view bytes);

// `bytes` decoded as above; returns `bytes` itself when it is already valid.
std::string utf8_replacing(std::string_view bytes);

// Length of the longest suffix of `bytes` that is a proper prefix of a well-formed sequence (0..3 bytes): the part
// a later byte could still complete. Decoding bytes[0, size - tail) and then the rest with more bytes appended gives
// the same text as decoding everything at once.
size_t utf8_incomplete_tail(std::string_view bytes);

// Length (1..4) of the well-formed, complete sequence starting at bytes[i], or 0 when it is ill-formed or cut off.
size_t utf8_sequence_length(std::string_view bytes, size_t i);

// Appends the UTF-8 encoding of scalar value `cp` (must be <= 0x10FFFF and not a surrogate).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace halo::input
