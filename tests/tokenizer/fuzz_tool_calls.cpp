// Fuzz target for parse_tool_calls (generated model output) and parse_chat_messages + render_chat (request JSON):
// neither may crash on any input; chat errors must be ChatError.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/input/bounded_json.h"
#include "core/tokenizer/chat.h"
#include "core/tokenizer/tool_calls.h"

using namespace halo::tok;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const ParsedReply reply = parse_tool_calls(text);
    if (reply.content.size() > text.size()) __builtin_trap();
    for (const auto& call : reply.tool_calls)
        if (call.arguments.size() > text.size() || call.id.size() > text.size()) __builtin_trap();

    // Request JSON is read as the engine reads untrusted JSON: bounded (nlohmann alone overflows the stack on
    // 20,000-deep nesting while copying ordered_map members).
    nlohmann::ordered_json j;
    try {
        j = halo::input::parse_ordered_json(text, halo::input::kRequestBody, "request");
    } catch (const halo::input::JsonInputError&) {
        return 0;
    }
    try {
        const auto& messages = j.is_object() && j.contains("messages") ? j["messages"] : j;
        const auto parsed = parse_chat_messages(messages);
        const nlohmann::ordered_json tools = j.is_object() && j.contains("tools") ? j["tools"] : nlohmann::ordered_json();
        (void)render_chat(parsed, tools, true);
    } catch (const ChatError&) {
    }
    return 0;
}
