// Splits a reply that arrives in pieces into content and tool calls (the K2 format, core/tokenizer/tool_calls.h) as
// it arrives, for streaming responses. Content goes out at once except text that could still become a marker; each
// call goes out as a start (index, id, name) and then fragments of its arguments. For any split of the text into
// pieces, the content and the arguments put back together equal what tok::parse_tool_calls finds in the whole
// text. One per response; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace halo::server {

struct ToolCallDelta {
    enum class Kind { content, call_start, arguments };
    Kind kind = Kind::content;
    int index = 0;          // call_start, arguments: the call's number in this reply, from 0
    std::string text;       // content, arguments: the new text
    std::string id, name;   // call_start: "functions.get_weather:0", "get_weather"
};

class ToolCallStream {
public:
    // New pieces of the reply; returns what can be sent now (adjacent pieces of one kind merged).
    std::vector<ToolCallDelta> push(std::string_view text);
    // The reply has ended: returns what was held back.
    std::vector<ToolCallDelta> finish();
    int calls() const { return calls_; }  // calls started so far

private:
    enum class State { content, section, header, arguments };
    void run(bool at_end, std::vector<ToolCallDelta>& out);
    void emit_content(std::string_view text, std::vector<ToolCallDelta>& out);
    void emit_arguments(std::string_view text, bool at_end, std::vector<ToolCallDelta>& out);
    void start_call(std::string_view header, std::vector<ToolCallDelta>& out);

    State state_ = State::content;
    std::string buf_;            // text not yet handled
    std::string held_space_;     // arguments: trailing whitespace, sent only if more arguments follow
    bool arguments_started_ = false;
    int calls_ = 0;
};

}  // namespace halo::server
