// The streaming tool-call splitter on synthetic replies (the demo model never emits a call by itself): for every way
// of cutting a reply into pieces, the deltas put back together equal what tok::parse_tool_calls finds in the whole
// reply, and no marker text ever leaks into content.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/tokenizer/tool_calls.h"
#include "server/tool_call_stream.h"

namespace halo::server {
namespace {

const std::string kSection = "<|tool_calls_section_begin|>";
const std::string kSectionEnd = "<|tool_calls_section_end|>";
const std::string kCall = "<|tool_call_begin|>";
const std::string kArgs = "<|tool_call_argument_begin|>";
const std::string kCallEnd = "<|tool_call_end|>";

std::string call(const std::string& header, const std::string& args) { return kCall + header + kArgs + args + kCallEnd; }

struct Collected {
    std::string content;
    struct Call {
        std::string id, name, arguments;
    };
    std::vector<Call> calls;
};

void collect(const std::vector<ToolCallDelta>& deltas, Collected& c) {
    for (const auto& d : deltas) {
        switch (d.kind) {
        case ToolCallDelta::Kind::content: c.content += d.text; break;
        case ToolCallDelta::Kind::call_start:
            ASSERT_EQ(d.index, int(c.calls.size()));
            c.calls.push_back({d.id, d.name, ""});
            break;
        case ToolCallDelta::Kind::arguments:
            ASSERT_GE(d.index, 0);
            ASSERT_LT(d.index, int(c.calls.size()));
            EXPECT_EQ(d.index, int(c.calls.size()) - 1) << "arguments go to the last call started";
            c.calls[size_t(d.index)].arguments += d.text;
            break;
        }
    }
}

// Feeds `pieces` and checks the result against the whole-reply parser.
Collected stream(const std::vector<std::string>& pieces) {
    ToolCallStream s;
    Collected c;
    for (const auto& p : pieces) collect(s.push(p), c);
    collect(s.finish(), c);
    return c;
}

void expect_matches_parser(const std::string& text, const std::vector<std::string>& pieces) {
    const tok::ParsedReply want = tok::parse_tool_calls(text);
    const Collected got = stream(pieces);
    EXPECT_EQ(got.content, want.content) << text;
    ASSERT_EQ(got.calls.size(), want.tool_calls.size()) << text;
    for (size_t i = 0; i < got.calls.size(); ++i) {
        EXPECT_EQ(got.calls[i].id, want.tool_calls[i].id) << text;
        EXPECT_EQ(got.calls[i].name, want.tool_calls[i].name) << text;
        EXPECT_EQ(got.calls[i].arguments, want.tool_calls[i].arguments) << text;
    }
}

// Every cut into two pieces, every cut into three around each position, and one byte at a time.
void expect_matches_parser_for_all_splits(const std::string& text) {
    expect_matches_parser(text, {text});
    for (size_t i = 0; i <= text.size(); ++i) expect_matches_parser(text, {text.substr(0, i), text.substr(i)});
    for (size_t i = 0; i + 3 <= text.size(); i += 3)
        expect_matches_parser(text, {text.substr(0, i), text.substr(i, 3), text.substr(i + 3)});
    std::vector<std::string> bytes;
    for (char ch : text) bytes.emplace_back(1, ch);
    expect_matches_parser(text, bytes);
}

const std::vector<std::string> kReplies = {
    "Plain text with no calls at all.",
    "Text with a stray < and <| and <|tool but no marker.",
    "Let me check." + kSection + call("functions.get_weather:0", R"({"city": "Paris"})") + kSectionEnd,
    kSection + call("functions.a:0", R"({"x": 1})") + call(" functions.b:1 ", " \n {\"y\": [1, 2]} \n ") + kSectionEnd +
        " and after",
    kSection + " stray " + call("functions.a:0", "{}") + " more stray " + kSectionEnd,
    "cut short " + kSection + kCall + "functions.get_weather:0" + kArgs + R"({"city": "Par)",
    "no section " + call("functions.bare:3", R"({"k": "v"})") + "tail",
    kSection + kCall + "functions.noargs:0" + kCallEnd + kSectionEnd,
    kSection + kCall + "functions.a:0" + kArgs + "{\"a\": 1}" + kCall + "functions.b:1" + kArgs + "{}" + kCallEnd +
        kSectionEnd,
    "two" + kSection + call("functions.a:0", "{}") + kSectionEnd + " sections " + kSection +
        call("functions.b:1", "{\"q\": \"a b  c\"}") + kSectionEnd,
    "header cut " + kSection + kCall + "functions.get_",
    "args with inner   spaces " + kSection + call("functions.s:0", "{ \"a\" :  1 ,  \"b\": \"x  y\" }") + kSectionEnd,
};

TEST(ToolCallStream, MatchesWholeReplyParserForEverySplit) {
    for (const auto& r : kReplies) expect_matches_parser_for_all_splits(r);
}

TEST(ToolCallStream, ContentGoesOutAtOnceButMarkerPrefixesAreHeld) {
    ToolCallStream s;
    Collected c;
    collect(s.push("Hello "), c);
    EXPECT_EQ(c.content, "Hello ");
    collect(s.push("world <|tool_calls"), c);
    EXPECT_EQ(c.content, "Hello world ") << "text that may start a marker is held back";
    collect(s.push("_section_begin|>"), c);
    EXPECT_EQ(c.content, "Hello world ");
    collect(s.push(kCall + "functions.get_weather:0" + kArgs + "{\"city\""), c);
    ASSERT_EQ(c.calls.size(), 1u);
    EXPECT_EQ(c.calls[0].id, "functions.get_weather:0");
    EXPECT_EQ(c.calls[0].name, "get_weather");
    EXPECT_EQ(c.calls[0].arguments, "{\"city\"") << "arguments stream as they arrive";
    collect(s.push(": \"Paris\"}<|tool_call_e"), c);
    EXPECT_EQ(c.calls[0].arguments, "{\"city\": \"Paris\"}");
    collect(s.push("nd|>" + kSectionEnd), c);
    collect(s.finish(), c);
    EXPECT_EQ(c.content, "Hello world ");
    EXPECT_EQ(s.calls(), 1);
}

TEST(ToolCallStream, HeldPrefixThatIsNotAMarkerIsReleased) {
    ToolCallStream s;
    Collected c;
    collect(s.push("a <|tool"), c);
    EXPECT_EQ(c.content, "a ");
    collect(s.push("box|> b"), c);
    EXPECT_EQ(c.content, "a <|toolbox|> b");
    collect(s.push("<|"), c);
    collect(s.finish(), c);
    EXPECT_EQ(c.content, "a <|toolbox|> b<|") << "at the end everything held goes out";
}

TEST(ToolCallStream, DeltasOfOneKindAreMerged) {
    ToolCallStream s;
    const auto deltas = s.push(kSection + call("functions.f:0", "{\"a\": 1}") + kSectionEnd + "x");
    ASSERT_EQ(deltas.size(), 3u);
    EXPECT_EQ(deltas[0].kind, ToolCallDelta::Kind::call_start);
    EXPECT_EQ(deltas[1].kind, ToolCallDelta::Kind::arguments);
    EXPECT_EQ(deltas[1].text, "{\"a\": 1}");
    EXPECT_EQ(deltas[2].kind, ToolCallDelta::Kind::content);
    EXPECT_EQ(deltas[2].text, "x");
}

}  // namespace
}  // namespace halo::server
