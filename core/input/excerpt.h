// Short, escaped quotations of untrusted input for error messages: an error sentence never embeds an unbounded or
// unprintable piece of a file, request or argument, however large or deep the input is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace halo::input {

// Default length of a quotation, in bytes of the result (escapes included, quotes and ellipsis excluded).
constexpr size_t kExcerptBytes = 48;
// Length of a quoted name (a tensor, a key, a file): real tensor names run to about 70 bytes and are quoted whole.
constexpr size_t kNameBytes = 120;

// `text` between single quotes: printable ASCII as is, other well-formed UTF-8 as is, control characters as \n, \t
// or \xNN, C1 and bidirectional controls as \u{XXXX}, ill-formed bytes as \xNN; cut after about `max_bytes` with "..." and the full length in bytes,
// e.g. 'aaaaaaaa...' (1048576 bytes).
std::string quote(std::string_view text, size_t max_bytes = kExcerptBytes);

// A message made safe for one line of a terminal or a log: escaped as quote() escapes (no quotes added) and, past
// about `max_bytes`, cut in the middle, keeping its start (what failed) and its end (what to do). The last guard
// before any error reaches stderr.
std::string one_line(std::string_view message, size_t max_bytes = 400);

// A JSON value written as compact JSON but never longer than about `max_bytes` and never deeper than a few levels
// (deeper containers print as [...] / {...}); strings inside are escaped like quote(). Safe on any value: it neither
// recurses without bound nor throws on ill-formed UTF-8.
std::string json_excerpt(const nlohmann::json& value, size_t max_bytes = kExcerptBytes);
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_bytes = kExcerptBytes);

// "line L, column C" (both from 1, columns in bytes) of byte `offset` in `text`.
std::string line_column(std::string_view text, size_t offset);

}  // namespace halo::input
