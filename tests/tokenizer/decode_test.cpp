// decode_cases.jsonl, UTF-8 replacement rules, the streaming detokenizer, and encode/decode round trips.
#include <gtest/gtest.h>

#include <random>

#include "core/tokenizer/stream_decoder.h"
#include "core/tokenizer/utf8.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

std::string hex_of(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) out += digits[c >> 4], out += digits[c & 15];
    return out;
}

// Feeds ids one at a time; checks that every output so far is a prefix of the one-shot text (so nothing is emitted
// early, in particular no U+FFFD that a later id would have completed) and returns the streamed text.
std::string stream_one_by_one(const Tokenizer& tok, const std::vector<TokenId>& ids, const std::string& one_shot) {
    StreamDecoder stream(tok);
    std::string out;
    for (TokenId id : ids) {
        out += stream.push(id);
        EXPECT_EQ(one_shot.compare(0, out.size(), out), 0) << "streamed output is not a prefix of decode()";
        EXPECT_LE(stream.pending_bytes(), 3u);
    }
    out += stream.finish();
    EXPECT_EQ(stream.pending_bytes(), 0u);
    return out;
}

TEST(Decode, GoldenCases) {
    const auto rows = read_jsonl("decode_cases.jsonl");
    EXPECT_EQ(rows.size(), 28u);
    for (const auto& c : rows) {
        const Tokenizer& tok = golden_tokenizer(c["vocab"]);
        const auto ids = c["ids"].get<std::vector<TokenId>>();
        EXPECT_EQ(hex_of(tok.decode_bytes(ids)), c["bytes_hex"].get<std::string>()) << "case " << c["name"];
        EXPECT_EQ(tok.decode(ids), c["text"].get<std::string>()) << "case " << c["name"];
    }
}

TEST(Decode, StreamingEqualsOneShotOnGoldenCases) {
    for (const auto& c : read_jsonl("decode_cases.jsonl")) {
        const Tokenizer& tok = golden_tokenizer(c["vocab"]);
        const auto ids = c["ids"].get<std::vector<TokenId>>();
        EXPECT_EQ(stream_one_by_one(tok, ids, c["text"]), c["text"].get<std::string>()) << "case " << c["name"];
    }
    for (const auto& c : read_jsonl("cases.jsonl")) {
        const Tokenizer& tok = golden_tokenizer(c["vocab"]);
        const auto ids = c["ids"].get<std::vector<TokenId>>();
        EXPECT_EQ(stream_one_by_one(tok, ids, c["text"]), c["text"].get<std::string>()) << "case " << c["name"];
    }
}

TEST(Decode, StreamingEqualsOneShotOnRandomIds) {
    std::mt19937 rng(1234);
    for (const char* vocab : {"a", "b"}) {
        const Tokenizer& tok = golden_tokenizer(vocab);
        for (int trial = 0; trial < 300; ++trial) {
            std::vector<TokenId> ids(rng() % 40);
            for (auto& id : ids) {
                // Mostly single bytes and short tokens (where partial UTF-8 lives), sometimes specials.
                const unsigned r = rng() % 10;
                id = r < 5 ? TokenId(128 + rng() % 128) : r < 9 ? TokenId(rng() % tok.num_base_tokens())
                                                                : TokenId(tok.num_base_tokens() + rng() % 256);
                if (std::string_view(vocab) == "b") id = TokenId(rng() % tok.vocab_size());
            }
            const std::string one_shot = tok.decode(ids);
            EXPECT_EQ(stream_one_by_one(tok, ids, one_shot), one_shot) << "trial " << trial;
            // Pushing all at once gives the same text too.
            StreamDecoder all(tok);
            std::string at_once = all.push(ids);
            at_once += all.finish();
            EXPECT_EQ(at_once, one_shot);
        }
    }
}

TEST(Decode, StreamHoldsBackPartialSequences) {
    const Tokenizer& tok = golden_tokenizer("a");  // vocab_a: byte b has id b
    StreamDecoder s(tok);
    EXPECT_EQ(s.push(0xF0), "");
    EXPECT_EQ(s.push(0x9F), "");
    EXPECT_EQ(s.push(0x98), "");
    EXPECT_EQ(s.pending_bytes(), 3u);
    EXPECT_EQ(s.push(0x80), "\xF0\x9F\x98\x80");  // 😀
    EXPECT_EQ(s.push(0xE4), "");
    EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");  // nothing is lost at the end
    EXPECT_EQ(s.push('a'), "a");
    EXPECT_EQ(s.push(0xE4), "");
    EXPECT_EQ(s.push('b'), "\xEF\xBF\xBD" "b");  // a byte that cannot continue the sequence flushes it
    EXPECT_THROW(s.push(tok.vocab_size()), TokenizerError);
    EXPECT_THROW(s.push(-1), TokenizerError);
}

TEST(Decode, ReplacementFollowsWhatwg) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(utf8_replacing("\xE4\xB8"), fffd);
    EXPECT_EQ(utf8_replacing("\xED\xA0\x80"), fffd + fffd + fffd);
    EXPECT_EQ(utf8_replacing("\xF0\x9F\x98" "a"), fffd + "a");
    EXPECT_EQ(utf8_replacing("\xC0\xAF"), fffd + fffd);
    EXPECT_EQ(utf8_replacing("\xFF" "x\x80"), fffd + "x" + fffd);
    EXPECT_EQ(utf8_replacing("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
    EXPECT_EQ(utf8_replacing("\xE0\x80\x80"), fffd + fffd + fffd);              // overlong
    EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x91\x8B"));
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
    EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F"), 2u);
    EXPECT_EQ(utf8_incomplete_tail("a\xE0\x80"), 0u);  // can never become valid
    EXPECT_EQ(utf8_incomplete_tail("\xC3\xA9"), 0u);
}

TEST(Decode, SkipSpecialKeepsToolMarkers) {
    const Tokenizer& tok = golden_tokenizer("a");
    const SpecialIds& s = tok.special_ids();
    const std::vector<TokenId> ids = {s.bos, 'h', 'i', s.tool_call_begin, s.im_end, tok.num_base_tokens() + 200};
    EXPECT_EQ(tok.decode(ids, true), "hi<|tool_call_begin|>");
    EXPECT_EQ(tok.decode(ids), "[BOS]hi<|tool_call_begin|><|im_end|><|reserved_token_" +
                                   std::to_string(tok.num_base_tokens() + 200) + "|>");
    EXPECT_THROW(tok.decode(std::vector<TokenId>{tok.vocab_size()}), TokenizerError);
}

// A random string mixing scripts, whitespace, digits, contractions, special names and (sometimes) ill-formed bytes.
std::string random_text(std::mt19937& rng, bool allow_invalid) {
    static const std::vector<std::string> fragments = {
        "Hello", " world", "'s", "'LL", " 123456", "\t", "\n\n", "  ", "\r\n", "世界", "你好、", "〇", "ー", "こんにちは",
        "Привет", " Ελληνικά", "مرحبا", "שלום", "नमस्ते", "สวัสดี", "é", "E\xCC\x81", "\xCC\x81", "👋", "❤\xEF\xB8\x8F",
        "1\xEF\xB8\x8F\xE2\x83\xA3", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xC2\x85", "\x1C", "\x0B", "():",
        "<|im_end|>", "<|im_user|>", "[BOS]", "<|reserved_token_3300|>", "XMLHttpRequest", "iPhone", "ſ", "---", "==",
        "\xE2\x80\x8B", "\xEF\xBB\xBF", "{\"a\": [1, 2]}", "x", "Z", "ß", "ǅ", "ʰ", "々", "⺀"};
    std::string s;
    const int n = int(rng() % 12);
    for (int i = 0; i < n; ++i) {
        if (allow_invalid && rng() % 10 == 0) {
            s += char(0x80 + rng() % 128);
            continue;
        }
        if (rng() % 4 == 0) {  // a random scalar value
            uint32_t cp = rng() % 4 == 0 ? rng() % 0x80 : rng() % 0x30000;
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'q';
            append_utf8(s, cp);
            continue;
        }
        s += fragments[rng() % fragments.size()];
    }
    return s;
}

TEST(Decode, EncodeDecodeRoundTrips) {
    std::mt19937 rng(99);
    for (const char* vocab : {"a", "b"}) {
        const Tokenizer& tok = golden_tokenizer(vocab);
        for (int trial = 0; trial < 3000; ++trial) {
            const std::string text = random_text(rng, trial % 3 == 0);
            const std::string expected = utf8_replacing(text);
            for (bool allow_special : {false, true}) {
                const auto ids = tok.encode(text, allow_special);
                ASSERT_EQ(tok.decode(ids), expected) << show(text);
                if (!allow_special) {
                    for (TokenId id : ids) ASSERT_FALSE(tok.is_special(id)) << show(text);
                }
            }
        }
    }
}

}  // namespace
}  // namespace halo::tok::test
