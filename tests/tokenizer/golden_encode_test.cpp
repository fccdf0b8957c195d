// Every case of cases.jsonl on its vocabulary: pre-tokenizer pieces, ids, and decode back to the text.
#include <gtest/gtest.h>

#include "core/tokenizer/regex_splitter.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

struct EncodeCase {
    std::string name, vocab, text;
    bool allow_special = false;
    std::string input;  // the bytes given to encode (input_hex for invalid-utf8 cases, else text)
    std::vector<std::string> pieces;
    std::vector<TokenId> ids;
};

const std::vector<EncodeCase>& cases() {
    static const std::vector<EncodeCase> all = [] {
        std::vector<EncodeCase> out;
        for (const auto& j : read_jsonl("cases.jsonl")) {
            EncodeCase c;
            c.name = j["name"];
            c.vocab = j["vocab"];
            c.text = j["text"];
            c.allow_special = j["allow_special"];
            c.input = c.text;
            if (j.contains("input_hex")) {
                const auto bytes = from_hex(j["input_hex"]);
                c.input.assign(bytes.begin(), bytes.end());
            }
            c.pieces = j["pieces"].get<std::vector<std::string>>();
            c.ids = j["ids"].get<std::vector<TokenId>>();
            out.push_back(std::move(c));
        }
        return out;
    }();
    return all;
}

TEST(GoldenEncode, HasAllCasesOnBothVocabularies) {
    size_t a = 0, b = 0, special = 0, invalid = 0;
    for (const auto& c : cases()) {
        (c.vocab == "a" ? a : b)++;
        special += c.allow_special;
        invalid += c.input != c.text;
    }
    EXPECT_EQ(cases().size(), 366u);
    EXPECT_EQ(a, 185u);
    EXPECT_EQ(b, 181u);
    EXPECT_EQ(special, 46u);
    EXPECT_GT(invalid, 0u);
}

TEST(GoldenEncode, PiecesEqualGolden) {
    size_t failures = 0;
    for (const auto& c : cases()) {
        const auto pieces = golden_tokenizer(c.vocab).pre_tokenize(c.input, c.allow_special);
        if (pieces != c.pieces) ++failures;
        EXPECT_EQ(pieces, c.pieces) << "case " << c.name << " text " << show(c.text);
    }
    EXPECT_EQ(failures, 0u);
}

TEST(GoldenEncode, IdsEqualGolden) {
    for (const auto& c : cases()) {
        const auto ids = golden_tokenizer(c.vocab).encode(c.input, c.allow_special);
        EXPECT_EQ(ids, c.ids) << "case " << c.name << " text " << show(c.text);
    }
}

TEST(GoldenEncode, DecodeGivesText) {
    for (const auto& c : cases())
        EXPECT_EQ(golden_tokenizer(c.vocab).decode(c.ids), c.text) << "case " << c.name;
}

TEST(GoldenEncode, PiecesConcatenateToText) {
    for (const auto& c : cases()) {
        std::string joined;
        for (const auto& p : golden_tokenizer(c.vocab).pre_tokenize(c.input, c.allow_special)) joined += p;
        EXPECT_EQ(joined, c.text) << "case " << c.name;
    }
}

// The PCRE2 implementation of the pattern (an independent engine) gives the golden pieces too, for every case
// without specials.
TEST(GoldenEncode, RegexSplitterEqualsGolden) {
    const RegexSplitter regex;
    for (const auto& c : cases()) {
        if (c.allow_special) continue;
        std::vector<std::string> pieces;
        for (auto p : regex.split(c.text)) pieces.emplace_back(p);
        EXPECT_EQ(pieces, c.pieces) << "case " << c.name;
    }
}

}  // namespace
}  // namespace halo::tok::test
