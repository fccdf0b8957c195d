// make_vocab: trains a small byte-level BPE vocabulary on the bundled corpus and writes it in the Kimi tokenizer
// format (tiktoken.model + tokenizer_config.json) so the demo model can take text prompts.
//
//   make_vocab --corpus tools/vocab/corpus --out build/models/demo [--base-tokens 4000]
//
// Training: the corpus files (sorted by name) are cut with the K2 pre-tokenizer; pieces are counted; starting from
// the 256 single bytes (ranks 0..255 in byte order), the most frequent adjacent pair is merged (ties: the pair of
// smaller ids) until --base-tokens tokens exist. A merge whose bytes already are a token adds nothing. The result
// is deterministic. Special tokens follow at base..base+255 with the real K2 offsets (golden README section 1).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tokenizer/chat_format.h"
#include "core/tokenizer/pretokenizer.h"
#include "core/tokenizer/utf8.h"
#include "core/tokenizer/vocab_files.h"

namespace fs = std::filesystem;

namespace {

struct Word {
    std::vector<int> symbols;  // token ids
    int64_t count = 0;
};

uint64_t pair_key(int a, int b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

std::string base64(std::string_view bytes) {
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
        out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], table[v & 63]};
    }
    if (bytes.size() - i == 1) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        out += {table[v >> 18], table[v >> 12 & 63], '=', '='};
    } else if (bytes.size() - i == 2) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
        out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], '='};
    }
    return out;
}

// Pieces of every corpus file, counted.
std::map<std::string, int64_t> count_pieces(const fs::path& corpus_dir) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(corpus_dir))
        if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::runtime_error("corpus directory " + corpus_dir.string() + " holds no .txt files");
    std::map<std::string, int64_t> counts;
    for (const auto& f : files) {
        const std::string text = halo::tok::utf8_replacing(halo::tok::read_file_bytes(f.string(), "corpus file"));
        for (std::string_view piece : halo::tok::pre_tokenize(text)) ++counts[std::string(piece)];
    }
    return counts;
}

// Byte-level BPE training; returns the token bytes by rank.
std::vector<std::string> train(const std::map<std::string, int64_t>& pieces, size_t num_tokens) {
    std::vector<std::string> tokens;
    std::unordered_map<std::string, int> token_ids;
    for (int b = 0; b < 256; ++b) {
        tokens.emplace_back(1, char(b));
        token_ids.emplace(tokens.back(), b);
    }
    std::vector<Word> words;
    for (const auto& [piece, count] : pieces) {
        Word w;
        for (unsigned char c : piece) w.symbols.push_back(c);
        w.count = count;
        if (w.symbols.size() > 1) words.push_back(std::move(w));
    }
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;  // may hold stale or repeated word indices
    auto add_pairs = [&](uint32_t wi, int64_t sign) {
        const Word& w = words[wi];
        for (size_t k = 0; k + 1 < w.symbols.size(); ++k) {
            const uint64_t key = pair_key(w.symbols[k], w.symbols[k + 1]);
            pair_count[key] += sign * w.count;
            if (sign > 0) pair_words[key].push_back(wi);
        }
    };
    for (uint32_t wi = 0; wi < words.size(); ++wi) add_pairs(wi, +1);

    // Max-heap of (count, pair) with lazy deletion; ties go to the smaller pair key (smaller ids).
    using Entry = std::pair<int64_t, uint64_t>;
    auto worse = [](const Entry& a, const Entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
    std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
    for (const auto& [key, count] : pair_count) heap.push({count, key});

    std::vector<uint32_t> last_seen(words.size(), UINT32_MAX);
    uint32_t step = 0;
    while (tokens.size() < num_tokens && !heap.empty()) {
        const auto [count, key] = heap.top();
        heap.pop();
        auto it = pair_count.find(key);
        if (it == pair_count.end() || it->second != count || count <= 0) continue;  // stale entry
        const int a = int(key >> 32), b = int(key & 0xFFFFFFFF);
        const std::string merged = tokens[size_t(a)] + tokens[size_t(b)];
        int id;
        if (auto found = token_ids.find(merged); found != token_ids.end()) {
            id = found->second;  // already a token (reached by another pair): merge without adding
        } else {
            id = int(tokens.size());
            tokens.push_back(merged);
            token_ids.emplace(merged, id);
        }
        ++step;
        std::vector<uint32_t> affected = std::move(pair_words[key]);
        pair_words.erase(key);
        std::vector<uint64_t> touched;
        for (uint32_t wi : affected) {
            if (last_seen[wi] == step) continue;
            last_seen[wi] = step;
            Word& w = words[wi];
            add_pairs(wi, -1);
            std::vector<int> out;
            out.reserve(w.symbols.size());
            for (size_t k = 0; k < w.symbols.size(); ++k) {
                if (k + 1 < w.symbols.size() && w.symbols[k] == a && w.symbols[k + 1] == b) {
                    out.push_back(id);
                    ++k;
                } else {
                    out.push_back(w.symbols[k]);
                }
            }
            w.symbols = std::move(out);
            add_pairs(wi, +1);
            for (size_t k = 0; k + 1 < w.symbols.size(); ++k) touched.push_back(pair_key(w.symbols[k], w.symbols[k + 1]));
        }
        pair_count.erase(key);
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (uint64_t t : touched)
            if (auto c = pair_count.find(t); c != pair_count.end() && c->second > 0) heap.push({c->second, t});
    }
    return tokens;
}

// The K2 special-token names by offset from num_base (golden README section 1); "special": false for the
// tool-call markers.
struct SpecialName {
    int offset;
    const char* name;
    bool special;
};
constexpr SpecialName kSpecials[] = {
    {0, "[BOS]", true},
    {1, "[EOS]", true},
    {2, "<|im_end|>", true},
    {3, "<|im_user|>", true},
    {4, "<|im_assistant|>", true},
    {6, "<|start_header_id|>", true},
    {7, "<|end_header_id|>", true},
    {9, "[EOT]", true},
    {10, "<|im_system|>", true},
    {11, "<|tool_calls_section_begin|>", false},
    {12, "<|tool_calls_section_end|>", false},
    {13, "<|tool_call_begin|>", false},
    {14, "<|tool_call_argument_begin|>", false},
    {15, "<|tool_call_end|>", false},
    {17, "<|im_middle|>", true},
    {254, "[UNK]", true},
    {255, "[PAD]", true},
};

// Writes `content` to `path` unless the file already holds exactly that, so an unchanged vocabulary keeps its
// timestamp and what is built from it (the demo model) is not rebuilt.
void write_if_changed(const fs::path& path, const std::string& content) {
    std::error_code ec;
    if (fs::exists(path, ec) && fs::file_size(path, ec) == content.size()) {
        std::ifstream in(path, std::ios::binary);
        const std::string old{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (old == content) return;
    }
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + path.string());
}

void write_files(const fs::path& out_dir, const std::vector<std::string>& tokens) {
    fs::create_directories(out_dir);
    std::string model;
    for (size_t r = 0; r < tokens.size(); ++r) model += base64(tokens[r]) + " " + std::to_string(r) + "\n";
    write_if_changed(out_dir / "tiktoken.model", model);
    nlohmann::ordered_json decoder = nlohmann::ordered_json::object();
    for (const SpecialName& s : kSpecials) {
        decoder[std::to_string(tokens.size() + size_t(s.offset))] = {
            {"content", s.name}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
            {"single_word", false}, {"special", s.special}};
    }
    nlohmann::ordered_json config = {
        {"added_tokens_decoder", decoder},
        {"additional_special_tokens", {"<|im_end|>", "<|im_user|>", "<|im_assistant|>", "<|start_header_id|>",
                                       "<|end_header_id|>", "[EOT]", "<|im_system|>", "<|im_middle|>"}},
        {"bos_token", "[BOS]"},
        {"chat_template", halo::tok::k2::kChatTemplateJinja},
        {"clean_up_tokenization_spaces", false},
        {"eos_token", "[EOS]"},
        {"model_max_length", 1048576},
        {"pad_token", "[PAD]"},
        {"tokenizer_class", "TikTokenTokenizer"},
        {"unk_token", "[UNK]"},
    };
    write_if_changed(out_dir / "tokenizer_config.json", config.dump(2) + "\n");
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s --corpus DIR --out DIR [--base-tokens N]\n"
                 "Trains a byte-level BPE vocabulary of N base tokens (default 4000; 256 bytes + merges) on the .txt\n"
                 "files of the corpus directory and writes tiktoken.model and tokenizer_config.json (256 special ids\n"
                 "after the base tokens, K2 names and offsets) into the output directory.\n",
                 argv0);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    fs::path corpus, out;
    size_t num_tokens = 4000;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--corpus" || arg == "--out" || arg == "--base-tokens") && i + 1 < argc) {
            const char* value = argv[++i];
            if (arg == "--corpus") corpus = value;
            if (arg == "--out") out = value;
            if (arg == "--base-tokens") num_tokens = size_t(std::strtoul(value, nullptr, 10));
        } else {
            return usage(argv[0]);
        }
    }
    if (corpus.empty() || out.empty()) return usage(argv[0]);
    if (num_tokens < 256 || num_tokens > 1000000) {
        std::fprintf(stderr, "make_vocab: --base-tokens must be between 256 and 1000000\n");
        return 2;
    }
    try {
        const auto pieces = count_pieces(corpus);
        const auto tokens = train(pieces, num_tokens);
        if (tokens.size() < num_tokens) {
            std::fprintf(stderr, "make_vocab: the corpus in %s only supports %zu tokens, fewer than the %zu asked for; add text\n",
                         corpus.string().c_str(), tokens.size(), num_tokens);
            return 1;
        }
        write_files(out, tokens);
        std::printf("make_vocab: %zu base tokens + %d special ids from %zu distinct pieces -> %s\n", tokens.size(),
                    halo::tok::kNumSpecialTokens, pieces.size(), out.string().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_vocab: %s\n", e.what());
        return 1;
    }
    return 0;
}
