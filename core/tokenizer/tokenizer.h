// Halo's native Kimi (K2-family, tiktoken-style) tokenizer. Reads tiktoken.model + tokenizer_config.json from a
// model directory; encodes exactly as the reference (golden README section 2: slices, special tokens,
// pre-tokenizer, BPE by rank) and decodes with U+FFFD replacement.
//
//   auto tok = halo::tok::Tokenizer::load(model_dir);        // throws TokenizerError (a std::runtime_error)
//   std::vector<TokenId> ids = tok.encode("Hello");          // specials NOT recognised: safe for user text
//   std::vector<TokenId> ids2 = tok.encode(prompt, true);    // "<|im_end|>" etc. become special ids
//   std::string text = tok.decode(ids);
//   tok.stop_ids();                                          // stop generation on any of these
//
// Chat prompts: chat.h (render_chat, encode_chat). Streaming output: stream_decoder.h.
// A Tokenizer is immutable after load: every const method may be called from any number of threads at once.
// Copies are cheap (they share the loaded tables).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer/vocab_files.h"

namespace halo::tok {

// Ids of the special tokens Halo uses, looked up by name in the loaded config (never hard-coded: a vocabulary
// with 3,256 base tokens has them at 3,256 + offset). -1 when the config does not name that token.
struct SpecialIds {
    TokenId bos = -1;                       // [BOS]; the chat template does not insert it
    TokenId eos = -1;                       // [EOS]: also accepted as a stop token
    TokenId im_end = -1;                    // <|im_end|>: ends every message; THE generation stop token
    TokenId im_user = -1;                   // <|im_user|>
    TokenId im_assistant = -1;              // <|im_assistant|>
    TokenId im_system = -1;                 // <|im_system|>
    TokenId im_middle = -1;                 // <|im_middle|>: role name / content separator
    TokenId tool_calls_section_begin = -1;  // <|tool_calls_section_begin|>
    TokenId tool_calls_section_end = -1;    // <|tool_calls_section_end|>
    TokenId tool_call_begin = -1;           // <|tool_call_begin|>
    TokenId tool_call_argument_begin = -1;  // <|tool_call_argument_begin|>
    TokenId tool_call_end = -1;             // <|tool_call_end|>
    TokenId unk = -1;                       // [UNK]
    TokenId pad = -1;                       // [PAD]
};

class Tokenizer {
public:
    // Loads `model_dir`/tiktoken.model and `model_dir`/tokenizer_config.json (the directory may hold only these
    // two). Throws TokenizerError naming the missing file or the malformed line.
    static Tokenizer load(const std::filesystem::path& model_dir);

    // The same from the files' contents; `source` prefixes error messages.
    static Tokenizer from_text(std::string_view tiktoken_model, std::string_view tokenizer_config_json,
                               const std::string& source = "tokenizer");

    // Token ids of `text`. With allow_special = false (the default, and what user-supplied content must use)
    // special-token strings such as "<|im_end|>" are ordinary text; with true they become their special ids (as
    // Hugging Face's encode does). Ill-formed UTF-8 is first decoded with U+FFFD replacement.
    std::vector<TokenId> encode(std::string_view text, bool allow_special = false) const;

    // encode() appending to `out`.
    void encode_append(std::string_view text, bool allow_special, std::vector<TokenId>& out) const;

    // The pre-tokenizer pieces encode() would BPE, in order; with allow_special each special-token string found is
    // a piece of its own. The pieces concatenate to the (U+FFFD-repaired) text.
    std::vector<std::string> pre_tokenize(std::string_view text, bool allow_special = false) const;

    // Text of `ids`: token bytes concatenated (a special id gives its name), then decoded as UTF-8 with each
    // maximal ill-formed subsequence replaced by U+FFFD. With skip_special, ids whose config entry has
    // "special": true (and reserved ids) are left out, like Hugging Face's skip_special_tokens; the tool-call
    // markers ("special": false) stay. Throws TokenizerError for an id outside [0, vocab_size()).
    std::string decode(std::span<const TokenId> ids, bool skip_special = false) const;

    // The raw bytes of `ids` concatenated (no UTF-8 repair).
    std::string decode_bytes(std::span<const TokenId> ids) const;

    // Raw bytes of one token: a base token's bytes (possibly partial UTF-8) or a special token's name. Throws
    // TokenizerError for an id outside [0, vocab_size()).
    std::string_view token_bytes(TokenId id) const;

    int vocab_size() const;       // num_base_tokens() + number of special ids (256)
    int num_base_tokens() const;  // lines of tiktoken.model
    bool is_special(TokenId id) const { return id >= num_base_tokens() && id < vocab_size(); }

    // Id of the special token named `name` (a reserved name only for an id without another name).
    std::optional<TokenId> special_id(std::string_view name) const;
    // Rank of a base token given its bytes.
    std::optional<TokenId> base_token_id(std::string_view bytes) const;

    const SpecialIds& special_ids() const;
    // Ids that end generation: <|im_end|> first, then [EOS] (those the config names).
    std::vector<TokenId> stop_ids() const;
    // The config's bos_token / eos_token / pad_token names (may be empty) and chat_template (informative).
    const TokenizerConfig& config() const;

private:
    struct Data;  // the loaded tables (tokenizer.cpp)
    explicit Tokenizer(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
    void encode_ordinary(std::string_view text, std::vector<TokenId>& out) const;
    std::shared_ptr<const Data> data_;
};

}  // namespace halo::tok
