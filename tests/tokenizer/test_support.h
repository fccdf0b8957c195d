// Shared helpers of the tokenizer tests: the golden folder, JSONL reading and the two golden vocabularies.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"

namespace halo::tok::test {

inline std::filesystem::path golden_dir() { return std::filesystem::path(HALO_GOLDEN_DIR) / "tokenizer"; }

// One JSON object per line of golden_dir()/name. ordered_json keeps key order (the tools JSON depends on it).
inline std::vector<nlohmann::ordered_json> read_jsonl(const std::string& name) {
    std::ifstream f(golden_dir() / name, std::ios::binary);
    std::vector<nlohmann::ordered_json> rows;
    std::string line;
    while (std::getline(f, line))
        if (!line.empty()) rows.push_back(nlohmann::ordered_json::parse(line));
    return rows;
}

// vocab "a" or "b", loaded once per process.
inline const Tokenizer& golden_tokenizer(const std::string& vocab) {
    static const Tokenizer a = Tokenizer::load(golden_dir() / "vocab_a");
    static const Tokenizer b = Tokenizer::load(golden_dir() / "vocab_b");
    return vocab == "a" ? a : b;
}

inline std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(uint8_t(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

// A short printable form of a string for failure messages.
inline std::string show(const std::string& s) {
    std::string out = nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    return out.size() > 200 ? out.substr(0, 200) + "..." : out;
}

}  // namespace halo::tok::test
