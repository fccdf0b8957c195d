// The demo model's vocabulary written by tools/vocab (make_vocab): the ids the demo model is generated with, and
// that text round-trips through it.
#include <gtest/gtest.h>

#include "core/tokenizer/chat.h"
#include "core/tokenizer/chat_format.h"
#include "core/tokenizer/stream_decoder.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

const Tokenizer& demo() {
    static const Tokenizer t = Tokenizer::load(HALO_DEMO_DIR);
    return t;
}

TEST(DemoVocab, SizesAndSpecialIds) {
    const Tokenizer& t = demo();
    EXPECT_EQ(t.num_base_tokens(), 4000);
    EXPECT_EQ(t.vocab_size(), 4256);
    EXPECT_EQ(t.special_ids().bos, 4000);
    EXPECT_EQ(t.special_ids().im_end, 4002);
    EXPECT_EQ(t.special_ids().pad, 4255);
    EXPECT_EQ(t.stop_ids(), (std::vector<TokenId>{4002, 4001}));
    EXPECT_EQ(t.config().chat_template, k2::kChatTemplateJinja);
    EXPECT_EQ(t.base_token_id("a"), 'a');  // single bytes at ranks 0..255 in byte order
}

TEST(DemoVocab, TextRoundTripsAndCompresses) {
    const Tokenizer& t = demo();
    const std::vector<std::string> texts = {
        "This program is free software: you can redistribute it and/or modify it.",
        "for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;",
        "今天天气很好，我们去公园散步吧。", "Привет, мир! 👋", ""};
    for (const auto& text : texts) {
        const auto ids = t.encode(text);
        EXPECT_EQ(t.decode(ids), text);
        StreamDecoder stream(t);
        std::string streamed;
        for (TokenId id : ids) streamed += stream.push(id);
        streamed += stream.finish();
        EXPECT_EQ(streamed, text);
    }
    EXPECT_LT(t.encode(texts[0]).size(), texts[0].size() / 3);  // English licence prose: a few bytes per token
}

TEST(DemoVocab, ChatPromptEncodes) {
    const std::vector<ChatMessage> messages = {{"user", "What is the capital of France?", {}, ""}};
    const auto ids = encode_chat(demo(), messages);
    EXPECT_EQ(ids.front(), 4010);  // <|im_system|>
    EXPECT_EQ(ids.back(), 4017);   // <|im_middle|> of the generation prompt
    EXPECT_EQ(demo().decode(ids), render_chat(messages));
}

}  // namespace
}  // namespace halo::tok::test
