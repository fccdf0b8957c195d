// Incremental detokenizer for streaming generation. Feed ids one at a time; each push() returns the text that is
// final so far, never a partial UTF-8 sequence, and never a U+FFFD for a sequence a later token could still
// complete. finish() returns what is left (an unfinished sequence becomes one U+FFFD). The concatenation of all
// push() results and finish() equals Tokenizer::decode of all the ids.
//
//   StreamDecoder stream(tok);
//   for (TokenId id : generated) send(stream.push(id));
//   send(stream.finish());
//
// One StreamDecoder per sequence; not thread-safe. It keeps a pointer to the tokenizer, which must outlive it.
#pragma once

#include <span>
#include <string>

#include "core/tokenizer/tokenizer.h"

namespace halo::tok {

class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
        : tokenizer_(&tokenizer), skip_special_(skip_special) {}

    // Text completed by `id` (possibly empty). Throws TokenizerError for an id outside the vocabulary (the
    // decoder is then unchanged).
    std::string push(TokenId id);
    // push() for several ids.
    std::string push(std::span<const TokenId> ids);
    // The held-back bytes decoded with U+FFFD replacement; the decoder is then empty and can be reused.
    std::string finish();
    // Bytes held back, waiting for the rest of a UTF-8 sequence (0..3).
    size_t pending_bytes() const { return pending_.size(); }

private:
    const Tokenizer* tokenizer_;
    bool skip_special_;
    std::string pending_;  // a proper prefix of a well-formed UTF-8 sequence
};

}  // namespace halo::tok
