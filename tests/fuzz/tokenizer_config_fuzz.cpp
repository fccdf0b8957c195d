// Fuzz target: tokenizer_config.json parsing rejects bad input with one bounded sentence, never a crash.
#include <cstdint>
#include <string_view>

#include "core/tokenizer/vocab_files.h"
#include "tests/fuzz/bounded_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto config = halo::tok::parse_tokenizer_config(std::string_view(reinterpret_cast<const char*>(data), size),
                                                              /*num_base=*/256, "tokenizer_config.json");
        if (config.specials.size() > 65536) __builtin_trap();
    } catch (const halo::tok::TokenizerError& e) {
        halo::fuzz::check_message(e);
    }
    return 0;
}
