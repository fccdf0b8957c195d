#include "core/tokenizer/vocab_files.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/file_kind.h"
#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"

namespace halo::tok {
namespace {

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Standard base64 with '=' padding; false when `in` is not exactly that.
bool decode_base64(std::string_view in, std::string& out) {
    out.clear();
    if (in.empty() || in.size() % 4 != 0) return false;
    size_t pad = 0;
    if (in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < in.size(); i += 4) {
        uint32_t v = 0;
        const bool last = i + 4 == in.size();
        for (size_t k = 0; k < 4; ++k) {
            const char c = in[i + k];
            int d;
            if (last && c == '=' && k >= 4 - pad) {
                d = 0;
            } else if ((d = base64_value(c)) < 0) {
                return false;
            }
            v = v << 6 | uint32_t(d);
        }
        out += char(v >> 16);
        if (!(last && pad == 2)) out += char(v >> 8 & 0xFF);
        if (!(last && pad >= 1)) out += char(v & 0xFF);
    }
    return true;
}

}  // namespace

std::string read_file_bytes(const std::string& path, const char* what) {
    if (const std::string why = why_not_a_file(path); !why.empty())
        throw TokenizerError(std::string(what) + " " + path + " " + why);
    try {
        return input::read_bounded_file(path, kMaxTokenizerFileBytes, "a tokenizer file");
    } catch (const input::InputError& e) {
        throw TokenizerError(std::string(what) + " " + e.what());
    }
}

std::vector<std::string> parse_tiktoken_model(std::string_view text, const std::string& source) {
    std::vector<std::string> by_rank;
    std::vector<size_t> rank_line;  // [rank] line that gave it, 0 = not yet given
    std::unordered_map<std::string, size_t> bytes_line;
    size_t line_no = 0, pos = 0, count = 0;
    std::string bytes;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        const std::string where = source + " line " + std::to_string(line_no);
        const size_t space = line.find(' ');
        if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
            throw TokenizerError(where + " is " + input::quote(line) +
                                 "; expected '<base64 token bytes> <rank>' with one space");
        const std::string_view b64 = line.substr(0, space), rank_text = line.substr(space + 1);
        if (!decode_base64(b64, bytes))
            throw TokenizerError(where + ": " + input::quote(b64) + " is not padded standard base64 of the token bytes");
        uint64_t rank = 0;
        if (rank_text.empty() || rank_text.size() > 10)
            throw TokenizerError(where + ": the rank " + input::quote(rank_text) + " is not a number below 2^31");
        for (char c : rank_text) {
            if (c < '0' || c > '9')
                throw TokenizerError(where + ": the rank " + input::quote(rank_text) + " is not a decimal number");
            rank = rank * 10 + uint64_t(c - '0');
        }
        if (rank >= (1ull << 31) - 1024)
            throw TokenizerError(where + ": the rank " + std::to_string(rank) + " is too large for a token id");
        if (rank >= by_rank.size()) {
            if (rank > 64 * (count + 1024))  // ranks are dense: refuse absurd gaps before allocating for them
                throw TokenizerError(where + ": the rank " + std::to_string(rank) +
                                     " is far beyond the number of lines; ranks must be 0..n-1");
            by_rank.resize(rank + 1);
            rank_line.resize(rank + 1, 0);
        }
        if (rank_line[rank])
            throw TokenizerError(where + ": rank " + std::to_string(rank) + " was already given on line " +
                                 std::to_string(rank_line[rank]) + "; each rank must appear once");
        auto [it, inserted] = bytes_line.emplace(bytes, line_no);
        if (!inserted)
            throw TokenizerError(where + ": the token bytes are the same as on line " + std::to_string(it->second) +
                                 "; each token must appear once");
        by_rank[rank] = bytes;
        rank_line[rank] = line_no;
        ++count;
    }
    if (count == 0) throw TokenizerError(source + " holds no tokens; it should have one '<base64> <rank>' line per token");
    for (size_t r = 0; r < by_rank.size(); ++r)
        if (!rank_line[r])
            throw TokenizerError(source + " has no token of rank " + std::to_string(r) + " although ranks go up to " +
                                 std::to_string(by_rank.size() - 1) + "; ranks must be 0..n-1, each once");
    for (int b = 0; b < 256; ++b)
        if (!bytes_line.count(std::string(1, char(b)))) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", b);
            throw TokenizerError(source + " has no token for the single byte " + hex +
                                 "; byte-level BPE needs all 256 single bytes");
        }
    return by_rank;
}

TokenizerConfig parse_tokenizer_config(std::string_view json_text, int num_base, const std::string& source) {
    nlohmann::json j;
    try {
        j = input::parse_json(json_text, input::kTokenizerConfigJson, source);
    } catch (const input::JsonInputError& e) {
        throw TokenizerError(e.what());
    }
    if (!j.is_object()) throw TokenizerError(source + " must hold a JSON object");
    TokenizerConfig config;
    std::vector<std::pair<int64_t, SpecialToken>> named;
    int64_t last_id = int64_t(num_base) + kNumSpecialTokens - 1;
    if (auto it = j.find("added_tokens_decoder"); it != j.end()) {
        if (!it->is_object()) throw TokenizerError(source + ": added_tokens_decoder must be an object of id -> token");
        for (const auto& [key, value] : it->items()) {
            // Canonical decimal only ("4000", not " 4000", "+4000" or "04000"): two spellings of one id would let
            // one entry silently replace the other.
            int64_t id = -1;
            const bool canonical = !key.empty() && key.size() <= 9 &&
                                   key.find_first_not_of("0123456789") == std::string::npos &&
                                   (key[0] != '0' || key.size() == 1);
            if (canonical) id = std::stoll(key);
            if (id < 0) throw TokenizerError(source + ": added_tokens_decoder key " + input::quote(key) + " is not a token id");
            if (id < num_base || id >= int64_t(num_base) + 65536)
                throw TokenizerError(source + ": added_tokens_decoder names id " + std::to_string(id) + ", but special ids start at " +
                                     std::to_string(num_base) + " (the number of lines in tiktoken.model)");
            if (!value.is_object() || !value.contains("content") || !value["content"].is_string())
                throw TokenizerError(source + ": added_tokens_decoder entry " + input::quote(key) + " has no \"content\" string");
            SpecialToken t;
            t.name = value["content"].get<std::string>();
            t.named = true;
            if (auto special = value.find("special"); special != value.end()) {
                if (!special->is_boolean())
                    throw TokenizerError(source + ": added_tokens_decoder[\"" + key +
                                         "\"].special must be a boolean, not " + special->type_name());
                t.special = special->get<bool>();
            }
            if (t.name.empty()) throw TokenizerError(source + ": added_tokens_decoder entry " + input::quote(key) + " has empty content");
            // Real names are under 32 bytes; the bound keeps special-token matching within a constant per byte.
            if (t.name.size() > kMaxSpecialNameBytes)
                throw TokenizerError(source + ": added_tokens_decoder entry " + input::quote(key) + " has a content of " +
                                     std::to_string(t.name.size()) + " bytes, more than the " +
                                     std::to_string(kMaxSpecialNameBytes) + " a special token may have");
            named.emplace_back(id, std::move(t));
            last_id = std::max(last_id, id);
        }
    }
    config.specials.resize(size_t(last_id - num_base + 1));
    for (auto& [id, t] : named) config.specials[size_t(id - num_base)] = std::move(t);
    std::unordered_map<std::string, int64_t> seen;
    for (size_t k = 0; k < config.specials.size(); ++k) {
        SpecialToken& t = config.specials[k];
        const int64_t id = int64_t(num_base) + int64_t(k);
        if (!t.named) t.name = "<|reserved_token_" + std::to_string(id) + "|>";
        auto [it, inserted] = seen.emplace(t.name, id);
        if (!inserted)
            throw TokenizerError(source + ": the special token " + input::quote(t.name, input::kNameBytes) + " names both id " +
                                 std::to_string(it->second) + " and id " + std::to_string(id));
    }
    auto text_field = [&](const char* key) {
        auto it = j.find(key);
        if (it == j.end()) return std::string();
        if (it->is_string()) return it->get<std::string>();
        if (it->is_null()) return std::string();
        if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
            return (*it)["content"].get<std::string>();  // the AddedToken object form
        throw TokenizerError(source + ": " + key + " must be a token name string or an object with a \"content\" "
                             "string, not " + it->type_name());
    };
    config.bos_token = text_field("bos_token");
    config.eos_token = text_field("eos_token");
    config.pad_token = text_field("pad_token");
    if (auto it = j.find("chat_template"); it != j.end()) {
        if (it->is_string()) {
            config.chat_template = it->get<std::string>();
        } else if (!it->is_null() && !it->is_array()) {  // the list-of-named-templates form is ignored (informative)
            throw TokenizerError(source + ": chat_template must be a string, not " + std::string(it->type_name()));
        }
    }
    return config;
}

}  // namespace halo::tok
