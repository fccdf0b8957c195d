// Parsing the two files of a Kimi tokenizer (KIMI_LINEAR.md 7.1, golden README section 1):
//   tiktoken.model         one base token per line: "<base64 of the raw bytes> <rank>"; the rank is the token id
//   tokenizer_config.json  Hugging Face shape; "added_tokens_decoder" names some of the special ids
// Special ids are num_base .. num_base+255 (num_base = number of base tokens); an id the config does not name is
// "<|reserved_token_{id}|>". Errors are TokenizerError sentences naming the file and line.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace halo::tok {

using TokenId = int32_t;

// A tokenizer file or input could not be used; what() is a sentence naming the input and what to do.
class TokenizerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

constexpr int kNumSpecialTokens = 256;  // special ids are num_base .. num_base + 255

struct SpecialToken {
    std::string name;     // "<|im_end|>", or "<|reserved_token_{id}|>" when the config does not name the id
    bool named = false;   // listed in added_tokens_decoder
    bool special = true;  // the config's "special" flag (false for the tool-call markers); true for reserved ids
};

struct TokenizerConfig {
    std::vector<SpecialToken> specials;  // [id - num_base], kNumSpecialTokens entries (more if the config names
                                         // ids beyond num_base + 255: the range then grows to cover them)
    std::string bos_token;               // "bos_token" (a special name), empty if absent
    std::string eos_token;               // "eos_token"
    std::string pad_token;               // "pad_token"
    std::string chat_template;           // "chat_template" (informative: Halo renders the K2 format natively)
};

// Base tokens indexed by rank. `source` names the file in errors. Blank lines are skipped (as tiktoken does); a
// trailing '\r' is ignored. Throws TokenizerError for a malformed line, bad base64, a rank given twice, token bytes
// given twice, ranks that are not 0..n-1, or a missing single byte.
std::vector<std::string> parse_tiktoken_model(std::string_view text, const std::string& source);

// The special tokens and named tokens of tokenizer_config.json text, for a vocabulary of `num_base` base tokens.
// Throws TokenizerError naming `source` and the field for invalid JSON or a field of the wrong type.
TokenizerConfig parse_tokenizer_config(std::string_view json_text, int num_base, const std::string& source);

// Largest tokenizer file read (tiktoken.model of the real models: ~3 MB; tokenizer_config.json: ~40 KB).
constexpr uint64_t kMaxTokenizerFileBytes = 256u << 20;
// Longest special-token name (the real ones are under 32 bytes).
constexpr size_t kMaxSpecialNameBytes = 256;

// Reads a whole file; throws TokenizerError naming `what` ("tokenizer file") and the path when it cannot, when the
// path is a directory, FIFO or device (refused before opening, so a FIFO does not block), or when it is larger than
// kMaxTokenizerFileBytes.
std::string read_file_bytes(const std::string& path, const char* what);

}  // namespace halo::tok
