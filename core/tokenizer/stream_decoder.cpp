#include "core/tokenizer/stream_decoder.h"

#include "core/tokenizer/utf8.h"

namespace halo::tok {

std::string StreamDecoder::push(TokenId id) { return push(std::span<const TokenId>(&id, 1)); }

std::string StreamDecoder::push(std::span<const TokenId> ids) {
    std::string bytes = pending_;
    for (TokenId id : ids) {
        const std::string_view b = tokenizer_->token_bytes(id);  // throws before anything changes
        if (skip_special_ && tokenizer_->is_special(id) &&
            tokenizer_->config().specials[size_t(id - tokenizer_->num_base_tokens())].special)
            continue;
        bytes.append(b);
    }
    // Hold back a trailing proper prefix of a sequence: decoding stops before its lead byte, where the UTF-8
    // decoder's state is the same whether or not more bytes follow.
    const size_t tail = utf8_incomplete_tail(bytes);
    pending_.assign(bytes, bytes.size() - tail, tail);
    bytes.resize(bytes.size() - tail);
    std::string out;
    out.reserve(bytes.size());
    append_utf8_replacing(out, bytes);
    return out;
}

std::string StreamDecoder::finish() {
    std::string out;
    append_utf8_replacing(out, pending_);
    pending_.clear();
    return out;
}

}  // namespace halo::tok
