// A JSON array of token ids, e.g. "[9906, 1917]", parsed strictly and fast (about 1 GB/s): '[', decimal integers
// below the vocabulary size separated by commas, ']', with JSON whitespace around. Flat by construction, so there is
// no nesting to bound; a violation is one sentence naming the source, the element and its line and column, quoting a
// short excerpt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace halo::input {

// Throws std::runtime_error naming `source` (e.g. "stdin") on anything else.
std::vector<int32_t> parse_token_id_array(std::string_view text, int64_t vocab_size, const std::string& source);

}  // namespace halo::input
