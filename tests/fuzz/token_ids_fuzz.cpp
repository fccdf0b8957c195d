// Fuzz target: the token-id array parser (engine detokenize's stdin) against nlohmann's JSON parser as the
// reference: both accept exactly the arrays of integers below the vocabulary, with the same ids; errors are one
// bounded sentence.
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"
#include "core/input/token_ids.h"
#include "tests/fuzz/bounded_message.h"

namespace {

constexpr int64_t kVocab = 1000;

// The reference: JSON (bounded parse), an array, every element an integer in [0, kVocab), written without a
// fraction or exponent (1.0 and 1e2 are numbers, not ids).
bool reference_ids(std::string_view text, std::vector<int32_t>& ids) {
    nlohmann::json j;
    try {
        j = halo::input::parse_json(text, {1u << 30, 1, "token ids"}, "stdin");
    } catch (const halo::input::JsonInputError&) {
        return false;
    }
    if (!j.is_array()) return false;
    for (const auto& v : j) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() >= uint64_t(kVocab)) return false;
        ids.push_back(int32_t(v.get<uint64_t>()));
    }
    return true;
}

}  // namespace

[[noreturn]] void disagree(std::string_view text, const char* what) {
    std::fprintf(stderr, "fuzz: token id parser and reference disagree (%s) on %s\n", what,
                 halo::input::quote(text, 200).c_str());
    __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<int32_t> want;
    const bool valid = reference_ids(text, want);
    try {
        const std::vector<int32_t> got = halo::input::parse_token_id_array(text, kVocab, "stdin");
        if (!valid) disagree(text, "only the parser accepts");
        if (got != want) disagree(text, "different ids");
    } catch (const std::runtime_error& e) {
        halo::fuzz::check_message(e);
        if (valid) disagree(text, e.what());
    }
    return 0;
}
