#include "core/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <unordered_map>

#include "core/tokenizer/bpe.h"
#include "core/tokenizer/pretokenizer.h"
#include "core/tokenizer/utf8.h"

namespace halo::tok {
namespace {

// Finds special-token strings in text: leftmost first, and the longest name at that position. The names are kept
// sorted; at each candidate position the range of names that share the text's next bytes narrows one byte at a time
// (a binary search per byte), so a position costs O(matched prefix x log names) whatever the names' lengths are.
class SpecialMatcher {
public:
    // `name` must outlive the matcher (it points into the tokenizer's config). Call sort() after the last add().
    void add(std::string_view name, TokenId id) {
        first_byte_[static_cast<unsigned char>(name[0])] = true;
        by_name_.emplace(name, id);
        sorted_.push_back({name, id});
    }
    void sort() {
        std::sort(sorted_.begin(), sorted_.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    }

    struct Match {
        size_t begin = std::string_view::npos;  // npos: none
        size_t length = 0;
        TokenId id = -1;
    };

    Match find(std::string_view text, size_t pos) const {
        for (; pos < text.size(); ++pos) {
            if (!first_byte_[static_cast<unsigned char>(text[pos])]) continue;
            if (const Match m = longest_at(text, pos); m.begin != std::string_view::npos) return m;
        }
        return {};
    }

    std::optional<TokenId> lookup(std::string_view name) const {
        auto it = by_name_.find(name);
        if (it == by_name_.end()) return std::nullopt;
        return it->second;
    }

private:
    struct Entry {
        std::string_view name;
        TokenId id;
    };

    // The longest name that text[pos..] starts with.
    Match longest_at(std::string_view text, size_t pos) const {
        Match best;
        size_t lo = 0, hi = sorted_.size();  // names sharing text[pos, pos + d)
        for (size_t d = 0; pos + d < text.size() && lo < hi; ++d) {
            if (sorted_[lo].name.size() == d) ++lo;  // the name equal to the prefix sorts first; it is shorter
            const unsigned char c = static_cast<unsigned char>(text[pos + d]);
            const auto byte_at = [d](const Entry& e) { return static_cast<unsigned char>(e.name[d]); };
            lo = size_t(std::partition_point(sorted_.begin() + long(lo), sorted_.begin() + long(hi),
                                             [&](const Entry& e) { return byte_at(e) < c; }) - sorted_.begin());
            hi = size_t(std::partition_point(sorted_.begin() + long(lo), sorted_.begin() + long(hi),
                                             [&](const Entry& e) { return byte_at(e) == c; }) - sorted_.begin());
            if (lo < hi && sorted_[lo].name.size() == d + 1) best = {pos, d + 1, sorted_[lo].id};
        }
        return best;
    }

    std::array<bool, 256> first_byte_{};
    std::vector<Entry> sorted_;  // by name (bytewise)
    std::unordered_map<std::string_view, TokenId> by_name_;
};

// Identifies a loaded vocabulary for the per-thread BPE cache (addresses can be reused, serials are not).
std::atomic<uint64_t> g_next_serial{1};

}  // namespace

struct Tokenizer::Data {
    uint64_t serial = g_next_serial.fetch_add(1);
    std::vector<std::string> base;             // [rank] raw bytes
    std::vector<std::string_view> base_views;  // [rank] views of base (for TokenMap)
    TokenMap map;
    TokenizerConfig config;  // specials[id - num_base]
    SpecialMatcher specials;
    SpecialIds ids;
};

Tokenizer Tokenizer::from_text(std::string_view tiktoken_model, std::string_view tokenizer_config_json,
                               const std::string& source) {
    auto d = std::make_shared<Data>();
    d->base = parse_tiktoken_model(tiktoken_model, source + "/tiktoken.model");
    d->config = parse_tokenizer_config(tokenizer_config_json, int(d->base.size()), source + "/tokenizer_config.json");
    d->base_views.assign(d->base.begin(), d->base.end());
    d->map.build(d->base_views);
    const TokenId num_base = TokenId(d->base.size());
    for (size_t k = 0; k < d->config.specials.size(); ++k)
        d->specials.add(d->config.specials[k].name, num_base + TokenId(k));
    d->specials.sort();
    auto id_of = [&](std::string_view name) { return d->specials.lookup(name).value_or(-1); };
    SpecialIds& s = d->ids;
    s.bos = id_of("[BOS]");
    s.eos = id_of("[EOS]");
    s.im_end = id_of("<|im_end|>");
    s.im_user = id_of("<|im_user|>");
    s.im_assistant = id_of("<|im_assistant|>");
    s.im_system = id_of("<|im_system|>");
    s.im_middle = id_of("<|im_middle|>");
    s.tool_calls_section_begin = id_of("<|tool_calls_section_begin|>");
    s.tool_calls_section_end = id_of("<|tool_calls_section_end|>");
    s.tool_call_begin = id_of("<|tool_call_begin|>");
    s.tool_call_argument_begin = id_of("<|tool_call_argument_begin|>");
    s.tool_call_end = id_of("<|tool_call_end|>");
    s.unk = id_of("[UNK]");
    s.pad = id_of("[PAD]");
    return Tokenizer(std::move(d));
}

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
    const std::filesystem::path model = model_dir / "tiktoken.model", config = model_dir / "tokenizer_config.json";
    std::error_code ec;
    if (!std::filesystem::is_directory(model_dir, ec))
        throw TokenizerError("model directory " + model_dir.string() + " does not exist or is not a directory");
    for (const auto& p : {model, config})
        if (!std::filesystem::exists(p, ec))
            throw TokenizerError("model directory " + model_dir.string() + " has no " + p.filename().string() +
                                 "; a Kimi tokenizer needs tiktoken.model and tokenizer_config.json");
    return from_text(read_file_bytes(model.string(), "tokenizer file"), read_file_bytes(config.string(), "tokenizer file"),
                     model_dir.string());
}

void Tokenizer::encode_ordinary(std::string_view text, std::vector<TokenId>& out) const {
    thread_local BpeCache cache;
    cache.bind(data_->serial);
    for (size_t pos = 0; pos < text.size();) {
        const size_t end = next_piece_end(text, pos);
        cache.encode(data_->map, text.substr(pos, end - pos), out);
        pos = end;
    }
}

namespace {

// Calls on_text(run) for each run of ordinary text and on_special(match) for each special-token string, in order,
// over the slices of `text` (well-formed UTF-8). Specials are looked for only when allow_special is set, and
// within a slice (a special name cut by a slice boundary stays text, as in the reference).
template <class OnText, class OnSpecial>
void for_each_segment(const SpecialMatcher& specials, std::string_view text, bool allow_special, OnText&& on_text,
                      OnSpecial&& on_special) {
    for (const ByteSpan& span : split_slices(text)) {
        const std::string_view slice = text.substr(span.begin, span.end - span.begin);
        if (!allow_special) {
            on_text(slice);
            continue;
        }
        for (size_t pos = 0;;) {
            const SpecialMatcher::Match m = specials.find(slice, pos);
            on_text(slice.substr(pos, std::min(m.begin, slice.size()) - pos));
            if (m.begin == std::string_view::npos) break;
            on_special(slice.substr(m.begin, m.length), m.id);
            pos = m.begin + m.length;
        }
    }
}

}  // namespace

void Tokenizer::encode_append(std::string_view text, bool allow_special, std::vector<TokenId>& out) const {
    std::string repaired;
    if (!is_valid_utf8(text)) {
        repaired = utf8_replacing(text);
        text = repaired;
    }
    for_each_segment(
        data_->specials, text, allow_special, [&](std::string_view run) { encode_ordinary(run, out); },
        [&](std::string_view, TokenId id) { out.push_back(id); });
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool allow_special) const {
    std::vector<TokenId> out;
    out.reserve(text.size() / 3 + 4);
    encode_append(text, allow_special, out);
    return out;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text, bool allow_special) const {
    const std::string repaired = utf8_replacing(text);
    std::vector<std::string> pieces;
    for_each_segment(
        data_->specials, repaired, allow_special,
        [&](std::string_view run) {
            for (size_t pos = 0; pos < run.size();) {
                const size_t end = next_piece_end(run, pos);
                pieces.emplace_back(run.substr(pos, end - pos));
                pos = end;
            }
        },
        [&](std::string_view name, TokenId) { pieces.emplace_back(name); });
    return pieces;
}

std::string_view Tokenizer::token_bytes(TokenId id) const {
    if (id >= 0 && id < num_base_tokens()) return data_->base[size_t(id)];
    if (id >= 0 && id < vocab_size()) return data_->config.specials[size_t(id - num_base_tokens())].name;
    throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary (ids 0.." +
                         std::to_string(vocab_size() - 1) + ")");
}

std::string Tokenizer::decode_bytes(std::span<const TokenId> ids) const {
    std::string bytes;
    for (TokenId id : ids) bytes.append(token_bytes(id));
    return bytes;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
    std::string bytes;
    for (TokenId id : ids) {
        const std::string_view b = token_bytes(id);
        if (skip_special && is_special(id) && data_->config.specials[size_t(id - num_base_tokens())].special) continue;
        bytes.append(b);
    }
    if (is_valid_utf8(bytes)) return bytes;
    return utf8_replacing(bytes);
}

int Tokenizer::vocab_size() const { return int(data_->base.size() + data_->config.specials.size()); }
int Tokenizer::num_base_tokens() const { return int(data_->base.size()); }

std::optional<TokenId> Tokenizer::special_id(std::string_view name) const { return data_->specials.lookup(name); }

std::optional<TokenId> Tokenizer::base_token_id(std::string_view bytes) const {
    const int32_t r = data_->map.find(bytes);
    if (r < 0) return std::nullopt;
    return r;
}

const SpecialIds& Tokenizer::special_ids() const { return data_->ids; }

std::vector<TokenId> Tokenizer::stop_ids() const {
    std::vector<TokenId> ids;
    if (data_->ids.im_end >= 0) ids.push_back(data_->ids.im_end);
    if (data_->ids.eos >= 0) ids.push_back(data_->ids.eos);
    return ids;
}

const TokenizerConfig& Tokenizer::config() const { return data_->config; }

}  // namespace halo::tok
