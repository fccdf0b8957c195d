// Untrusted JSON and id lists: limits on size, depth and duplicate keys, and error sentences that stay short and
// printable whatever the input (core/input). Each case is an input that crashed the engine, flooded its log or was
// read differently by other JSON readers.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"
#include "core/input/token_ids.h"

namespace halo::input {
namespace {

constexpr JsonLimits kTest{1u << 20, 8, "a test document"};

// The message of the JsonInputError that parsing `text` throws ("" when it parses).
std::string parse_error(const std::string& text, const JsonLimits& limits = kTest) {
    try {
        (void)parse_json(text, limits, "doc.json");
    } catch (const JsonInputError& e) {
        return e.what();
    }
    return "";
}

void expect_bounded(const std::string& message) {
    EXPECT_LT(message.size(), 300u) << message.substr(0, 400);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(BoundedJson, DeepNestingIsRefusedBeforeParsingWithItsPosition) {
    for (const char* open : {"[", "{\"a\":"}) {
        std::string deep;
        for (int i = 0; i < 100000; ++i) deep += open;
        const std::string e = parse_error("{\"hidden_size\": " + deep + "}");
        EXPECT_NE(e.find("doc.json nests JSON more than 8 levels deep (at line 1, column"), std::string::npos) << e;
        expect_bounded(e);
    }
    // Eight levels are allowed, nine are not.
    EXPECT_EQ(parse_error("[[[[[[[[1]]]]]]]]"), "");
    EXPECT_NE(parse_error("[[[[[[[[[1]]]]]]]]]"), "");
}

TEST(BoundedJson, BracketsInsideStringsAreNotNesting) {
    const std::string text = "{\"a\": \"" + std::string(1000, '[') + "\\\"[{\", \"b\": [1]}";
    EXPECT_EQ(parse_error(text), "");
    EXPECT_EQ(json_depth(text, 100), 2);
}

TEST(BoundedJson, SizeLimitNamesTheSizes) {
    const std::string e = parse_error("[" + std::string(2u << 20, ' ') + "]");
    EXPECT_NE(e.find("doc.json is 2097154 bytes, more than the 1048576 (1.0 MB) allowed for a test document"), std::string::npos) << e;
}

TEST(BoundedJson, DuplicateKeysAreRefusedByName) {
    std::string e = parse_error(R"({"a": 1, "b": {"c": 2, "c": 3}})");
    EXPECT_NE(e.find("has the key 'c' twice in the object at 'b'"), std::string::npos) << e;
    e = parse_error(R"({"x": 1, "x": 1})");
    EXPECT_NE(e.find("has the key 'x' twice in its top-level object"), std::string::npos) << e;
    // The same key in different objects is fine.
    EXPECT_EQ(parse_error(R"([{"a": 1}, {"a": 2}])"), "");
}

TEST(BoundedJson, SyntaxErrorsGivePositionAndAShortExcerpt) {
    std::string e = parse_error("{\n  \"a\": tru\n}");
    EXPECT_NE(e.find("doc.json is not valid JSON: "), std::string::npos) << e;
    EXPECT_NE(e.find("at line 2, column"), std::string::npos) << e;
    // An unterminated 500 KB string: nlohmann's own message would quote all of it.
    e = parse_error("{\"a\": \"" + std::string(500000, 'x'));
    expect_bounded(e);
    EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST(BoundedJson, IllFormedUtf8NulBytesAndHugeNumbersAreRefused) {
    EXPECT_NE(parse_error("{\"a\": \"\xC0\xAF\"}"), "");  // overlong
    EXPECT_NE(parse_error("{\"a\": \"\xED\xA0\x80\"}"), "");  // a surrogate
    EXPECT_NE(parse_error(std::string("[1]\0[2]", 7)).find("NUL byte at line 1, column 4"), std::string::npos);
    EXPECT_NE(parse_error("[1e999]"), "");
    // Integers past 64 bits are numbers, not errors: the readers of each field decide.
    EXPECT_EQ(parse_error("[18446744073709551616]"), "");
}

TEST(BoundedJson, OrderedParseKeepsKeyOrderUnderTheSameLimits) {
    const auto j = parse_ordered_json(R"({"z": 1, "a": 2})", kTest, "doc.json");
    EXPECT_EQ(j.begin().key(), "z");
    EXPECT_THROW((void)parse_ordered_json(R"({"z": 1, "z": 2})", kTest, "doc.json"), JsonInputError);
}

TEST(Excerpt, QuotesAreShortEscapedAndValidUtf8) {
    EXPECT_EQ(quote("abc"), "'abc'");
    EXPECT_EQ(quote("a\nb\tc\x01'"), "'a\\nb\\tc\\x01\\''");
    EXPECT_EQ(quote("\xC3\xA9\xFF"), "'\xC3\xA9\\xFF'");  // é kept, a stray byte escaped
    const std::string q = quote(std::string(100000, 'y'));
    EXPECT_LT(q.size(), 80u);
    EXPECT_NE(q.find("(100000 bytes)"), std::string::npos) << q;
}

TEST(Excerpt, OneLineEscapesControlsAndCutsLongMessages) {
    EXPECT_EQ(one_line("a\nb\x1b[31m\x7f"), "a\\nb\\x1B[31m\\x7F");
    EXPECT_EQ(one_line("x\xC2\x9By\xE2\x80\xAEz"), "x\\u{009B}y\\u{202E}z");  // C1 CSI, right-to-left override
    EXPECT_EQ(one_line("it's \xE4\xB8\x96"), "it's \xE4\xB8\x96");                 // quotes and CJK stay
    const std::string cut = one_line("start " + std::string(5000, 'x') + " end", 100);
    EXPECT_LT(cut.size(), 140u);
    EXPECT_EQ(cut.substr(0, 6), "start ");
    EXPECT_EQ(cut.substr(cut.size() - 4), " end");
    EXPECT_NE(cut.find("(5010 bytes in all)"), std::string::npos) << cut;
}

TEST(Excerpt, AnyJsonValueGivesAShortLine) {
    nlohmann::json deep = 1;
    for (int i = 0; i < 50000; ++i) deep = nlohmann::json::array({std::move(deep)});  // far deeper than dump() survives
    const std::string e = json_excerpt(deep);
    EXPECT_LT(e.size(), 60u);
    EXPECT_EQ(e.substr(0, 5), "[[[[[");
    EXPECT_EQ(json_excerpt(nlohmann::json(std::string(10000, 'z'))).size(), kExcerptBytes + 3);
    EXPECT_EQ(json_excerpt(nlohmann::json::parse(R"({"a":[1,2],"b":"x\ny"})")), R"({"a":[1,2],"b":"x\ny"})");
    // A string that is not UTF-8 (built in code, not parsed) neither throws nor leaks raw bytes.
    EXPECT_EQ(json_excerpt(nlohmann::json(std::string("\xFF"))), "\"\\xFF\"");
}

TEST(TokenIdArray, ParsesJsonArraysOfIds) {
    EXPECT_EQ(parse_token_id_array(" [1, 2,3]\n", 10, "stdin"), (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(parse_token_id_array("[]", 10, "stdin"), std::vector<int32_t>{});
    EXPECT_EQ(parse_token_id_array("\xEF\xBB\xBF[0]", 10, "stdin"), std::vector<int32_t>{0});
}

TEST(TokenIdArray, RefusesEverythingElseInOneShortSentence) {
    std::string deep(100000, '[');
    const struct {
        std::string text, needle;
    } cases[] = {
        {"", "stdin is empty"},
        {"{}", "stdin starts with '{}'"},
        {"[1,]", "element 1 of stdin's array (']' at line 1, column 4) is not a token id"},
        {"[1 2]", "stdin has '2]' at line 1, column 4 where , or ] belongs"},
        {"[10]", "element 0 of stdin's array ('10' at line 1, column 2) is not a token id; ids are integers from 0 to 9"},
        {"[-1]", "is not a token id"},
        {"[1.0]", "is not a token id"},
        {"[01]", "is not a token id"},
        {"[99999999999999999999999]", "is not a token id"},
        {"[1", "ends inside the array"},
        {"[1] [2]", "after the array"},
        {deep, "element 0 of stdin's array"},
    };
    for (const auto& c : cases) {
        try {
            (void)parse_token_id_array(c.text, 10, "stdin");
            ADD_FAILURE() << "accepted " << quote(c.text);
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << e.what();
            expect_bounded(e.what());
        }
    }
}

}  // namespace
}  // namespace halo::input
