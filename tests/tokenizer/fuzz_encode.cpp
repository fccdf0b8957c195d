// Fuzz target for the encoder on vocab_a. The first byte picks allow_special; the rest is the text (any bytes).
// Checks, trapping on failure: decode(encode(x)) is x with U+FFFD repair; the hand-written pre-tokenizer and the
// PCRE2 engine give the same pieces (on texts free of code points assigned after PCRE2's Unicode 14, where the two
// engines' Unicode versions differ: RegexSplitter::agrees_on_classes); streaming decode equals one-shot decode.
#include <cstdint>
#include <string>

#include "core/tokenizer/regex_splitter.h"
#include "core/tokenizer/stream_decoder.h"
#include "core/tokenizer/pretokenizer.h"
#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"

using namespace halo::tok;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const Tokenizer tok = Tokenizer::load(HALO_GOLDEN_DIR "/tokenizer/vocab_a");
    static const RegexSplitter regex;
    if (size == 0) return 0;
    const bool allow_special = data[0] & 1;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string repaired = utf8_replacing(text);

    const std::vector<TokenId> ids = tok.encode(text, allow_special);
    if (tok.decode(ids) != repaired) __builtin_trap();
    if (!allow_special)
        for (TokenId id : ids)
            if (tok.is_special(id)) __builtin_trap();

    if (repaired.size() <= 4096 && RegexSplitter::agrees_on_classes(repaired) &&
        pre_tokenize(repaired) != regex.split(repaired))
        __builtin_trap();

    StreamDecoder stream(tok);
    std::string streamed;
    for (TokenId id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    if (streamed != repaired) __builtin_trap();
    return 0;
}
