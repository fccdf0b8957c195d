// parse_tool_calls: the assistant turns of the golden conversations parse back to their calls; malformed and
// truncated output is tolerated.
#include <gtest/gtest.h>

#include "core/tokenizer/chat.h"
#include "core/tokenizer/tool_calls.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

// What the model generates for an assistant message: the rendered text between the assistant header and
// <|im_end|>.
std::string assistant_turn(const ChatMessage& m, size_t first_index) {
    std::string s = m.content;
    if (m.tool_calls.empty()) return s;
    s += "<|tool_calls_section_begin|>";
    for (size_t k = 0; k < m.tool_calls.size(); ++k)
        s += "<|tool_call_begin|>functions." + m.tool_calls[k].name + ":" + std::to_string(first_index + k) +
             "<|tool_call_argument_begin|>" + m.tool_calls[k].arguments + "<|tool_call_end|>";
    return s + "<|tool_calls_section_end|>";
}

TEST(ToolCalls, GoldenAssistantTurnsParseBack) {
    size_t turns = 0, calls = 0;
    for (const auto& c : read_jsonl("chat_cases.jsonl")) {
        const auto messages = parse_chat_messages(c["messages"]);
        const std::string rendered = c["rendered"];
        size_t index = 0;
        for (const auto& m : messages) {
            if (m.role != "assistant" || m.tool_calls.empty()) continue;
            const std::string turn = assistant_turn(m, index);
            ASSERT_NE(rendered.find("<|im_assistant|>assistant<|im_middle|>" + turn + "<|im_end|>"), std::string::npos)
                << "case " << c["name"];
            const ParsedReply reply = parse_tool_calls(turn);
            EXPECT_TRUE(reply.well_formed) << "case " << c["name"];
            EXPECT_EQ(reply.content, m.content);
            ASSERT_EQ(reply.tool_calls.size(), m.tool_calls.size());
            for (size_t k = 0; k < m.tool_calls.size(); ++k) {
                const ParsedToolCall& p = reply.tool_calls[k];
                EXPECT_EQ(p.name, m.tool_calls[k].name);
                EXPECT_EQ(p.index, int(index + k));
                EXPECT_EQ(p.id, m.tool_calls[k].id);  // the golden ids are functions.{name}:{idx}
                EXPECT_EQ(p.arguments, m.tool_calls[k].arguments);
                EXPECT_TRUE(p.arguments_valid);
                EXPECT_TRUE(p.complete);
            }
            index += m.tool_calls.size();
            ++turns;
            calls += m.tool_calls.size();
        }
    }
    EXPECT_GT(turns, 0u);
    EXPECT_GT(calls, turns - 1);
}

TEST(ToolCalls, PlainTextHasNoCalls) {
    const ParsedReply r = parse_tool_calls("The weather is fine.");
    EXPECT_EQ(r.content, "The weather is fine.");
    EXPECT_TRUE(r.tool_calls.empty());
    EXPECT_TRUE(r.well_formed);
    EXPECT_TRUE(parse_tool_calls("").tool_calls.empty());
}

TEST(ToolCalls, TwoCallsWithWhitespaceAndTrailingText) {
    const ParsedReply r = parse_tool_calls(
        "Let me check.<|tool_calls_section_begin|>\n<|tool_call_begin|> functions.get_weather:0 "
        "<|tool_call_argument_begin|> {\"city\": \"Paris\"} <|tool_call_end|>\n<|tool_call_begin|>functions.a.b:c:12"
        "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|> done");
    EXPECT_TRUE(r.well_formed);
    EXPECT_EQ(r.content, "Let me check. done");
    ASSERT_EQ(r.tool_calls.size(), 2u);
    EXPECT_EQ(r.tool_calls[0].name, "get_weather");
    EXPECT_EQ(r.tool_calls[0].index, 0);
    EXPECT_EQ(r.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
    EXPECT_EQ(r.tool_calls[1].name, "a.b:c");  // only the last ':' starts the index
    EXPECT_EQ(r.tool_calls[1].index, 12);
}

TEST(ToolCalls, MalformedOutputIsRecoveredAndFlagged) {
    {  // truncated inside the arguments
        const ParsedReply r = parse_tool_calls(
            "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{\"a\": 1");
        EXPECT_FALSE(r.well_formed);
        ASSERT_EQ(r.tool_calls.size(), 1u);
        EXPECT_EQ(r.tool_calls[0].name, "f");
        EXPECT_FALSE(r.tool_calls[0].complete);
        EXPECT_FALSE(r.tool_calls[0].arguments_valid);
    }
    {  // arguments nested 100,000 deep (a model can generate that) or with a key twice: not valid, and no crash
        for (const std::string& args : {"{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}",
                                       std::string("{\"a\": 1, \"a\": 2}")}) {
            const ParsedReply r = parse_tool_calls("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0"
                                                   "<|tool_call_argument_begin|>" + args +
                                                   "<|tool_call_end|><|tool_calls_section_end|>");
            ASSERT_EQ(r.tool_calls.size(), 1u);
            EXPECT_TRUE(r.tool_calls[0].complete);
            EXPECT_FALSE(r.tool_calls[0].arguments_valid) << args.substr(0, 40);
        }
    }
    {  // no section markers, no prefix, no index, arguments not JSON
        const ParsedReply r =
            parse_tool_calls("x<|tool_call_begin|>search<|tool_call_argument_begin|>not json<|tool_call_end|>");
        EXPECT_FALSE(r.well_formed);
        ASSERT_EQ(r.tool_calls.size(), 1u);
        EXPECT_EQ(r.content, "x");
        EXPECT_EQ(r.tool_calls[0].name, "search");
        EXPECT_EQ(r.tool_calls[0].index, -1);
        EXPECT_TRUE(r.tool_calls[0].complete);
        EXPECT_FALSE(r.tool_calls[0].arguments_valid);
    }
    {  // missing argument marker; the next call starts before this one ends
        const ParsedReply r = parse_tool_calls(
            "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_begin|>functions.g:1"
            "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>");
        EXPECT_FALSE(r.well_formed);
        ASSERT_EQ(r.tool_calls.size(), 2u);
        EXPECT_EQ(r.tool_calls[0].name, "f");
        EXPECT_EQ(r.tool_calls[0].arguments, "");
        EXPECT_EQ(r.tool_calls[1].name, "g");
        EXPECT_TRUE(r.tool_calls[1].arguments_valid);
    }
    {  // markers only
        const ParsedReply r = parse_tool_calls("<|tool_calls_section_begin|><|tool_calls_section_end|>");
        EXPECT_TRUE(r.tool_calls.empty());
        EXPECT_EQ(r.content, "");
    }
}

// Generation can stop anywhere: every prefix of a well-formed reply parses, and the calls it reports are complete
// only once their <|tool_call_end|> is in.
TEST(ToolCalls, EveryTruncationParses) {
    const std::string full =
        "ok<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
        "{\"city\":\"Zürich\"}<|tool_call_end|><|tool_call_begin|>functions.t:1<|tool_call_argument_begin|>{}"
        "<|tool_call_end|><|tool_calls_section_end|>";
    for (size_t n = 0; n <= full.size(); ++n) {
        const ParsedReply r = parse_tool_calls(std::string_view(full).substr(0, n));
        for (const auto& call : r.tool_calls)
            if (call.complete) {
                EXPECT_TRUE(call.arguments_valid) << n;
            }
        if (n == full.size()) {
            EXPECT_TRUE(r.well_formed);
            EXPECT_EQ(r.tool_calls.size(), 2u);
        }
    }
}

}  // namespace
}  // namespace halo::tok::test
