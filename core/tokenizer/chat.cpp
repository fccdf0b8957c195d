#include "core/tokenizer/chat.h"

#include "core/tokenizer/chat_format.h"

namespace halo::tok {
namespace {

class SegmentWriter {
public:
    void marker(std::string_view name) { segments_.push_back({std::string(name), true}); }
    void text(std::string_view s) {
        if (s.empty()) return;
        if (!segments_.empty() && !segments_.back().is_marker)
            segments_.back().text.append(s);
        else
            segments_.push_back({std::string(s), false});
    }
    std::vector<ChatSegment> take() { return std::move(segments_); }

private:
    std::vector<ChatSegment> segments_;
};

std::string message_label(size_t index) { return "message " + std::to_string(index); }

}  // namespace

std::vector<ChatSegment> render_chat_segments(std::span<const ChatMessage> messages,
                                              const nlohmann::ordered_json& tools, bool add_generation_prompt) {
    using namespace k2;
    if (!tools.is_null() && !tools.is_array())
        throw ChatError("tools must be a JSON array of tool definitions or null, not " + std::string(tools.type_name()));
    SegmentWriter w;
    if (tools.is_array() && !tools.empty()) {
        w.marker(kImSystem);
        w.text(kToolDeclareRole);
        w.marker(kImMiddle);
        w.text(serialize_tools(tools));
        w.marker(kImEnd);
    }
    size_t call_index = 0;  // counts tool calls across the whole conversation
    for (size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (i == 0 && m.role != "system") {
            w.marker(kImSystem);
            w.text("system");
            w.marker(kImMiddle);
            w.text(kDefaultSystemPrompt);
            w.marker(kImEnd);
        }
        if (m.role == "system") {
            w.marker(kImSystem);
            w.text("system");
        } else if (m.role == "user") {
            w.marker(kImUser);
            w.text("user");
        } else if (m.role == "assistant") {
            w.marker(kImAssistant);
            w.text("assistant");
        } else if (m.role == "tool") {
            w.marker(kImSystem);
            w.text("tool");
        } else {
            throw ChatError(message_label(i) + " has role '" + m.role + "'; expected system, user, assistant or tool");
        }
        w.marker(kImMiddle);
        if (m.role == "tool") {
            w.text(kToolReturnPrefix);
            w.text(m.tool_call_id);
            w.text("\n");
        }
        w.text(m.content);
        if (m.role == "assistant" && !m.tool_calls.empty()) {
            w.marker(kToolCallsSectionBegin);
            for (const ToolCall& call : m.tool_calls) {
                w.marker(kToolCallBegin);
                w.text(std::string(kFunctionPrefix) + call.name + ":" + std::to_string(call_index++));
                w.marker(kToolCallArgumentBegin);
                w.text(call.arguments);
                w.marker(kToolCallEnd);
            }
            w.marker(kToolCallsSectionEnd);
        }
        w.marker(kImEnd);
    }
    if (add_generation_prompt) {
        w.marker(kImAssistant);
        w.text("assistant");
        w.marker(kImMiddle);
    }
    return w.take();
}

std::string render_chat(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                        bool add_generation_prompt) {
    std::string out;
    for (const ChatSegment& s : render_chat_segments(messages, tools, add_generation_prompt)) out += s.text;
    return out;
}

std::vector<TokenId> encode_chat(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                 const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                 ContentSpecials content_specials) {
    const std::vector<ChatSegment> segments = render_chat_segments(messages, tools, add_generation_prompt);
    std::vector<TokenId> ids;
    if (content_specials == ContentSpecials::as_special) {
        std::string prompt;
        for (const ChatSegment& s : segments) prompt += s.text;
        tokenizer.encode_append(prompt, true, ids);
        return ids;
    }
    for (const ChatSegment& s : segments) {
        if (!s.is_marker) {
            tokenizer.encode_append(s.text, false, ids);
            continue;
        }
        const std::optional<TokenId> id = tokenizer.special_id(s.text);
        if (!id)
            throw ChatError("the tokenizer has no special token " + s.text +
                            ", which the K2 chat format needs; check added_tokens_decoder in tokenizer_config.json");
        ids.push_back(*id);
    }
    return ids;
}

std::vector<ChatMessage> parse_chat_messages(const nlohmann::ordered_json& messages) {
    if (!messages.is_array()) throw ChatError("messages must be a JSON array, not " + std::string(messages.type_name()));
    std::vector<ChatMessage> out;
    for (size_t i = 0; i < messages.size(); ++i) {
        const auto& j = messages[i];
        const std::string label = message_label(i);
        if (!j.is_object()) throw ChatError(label + " must be a JSON object");
        ChatMessage m;
        auto role = j.find("role");
        if (role == j.end() || !role->is_string()) throw ChatError(label + " has no \"role\" string");
        m.role = role->get<std::string>();
        if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
            throw ChatError(label + " has role '" + m.role + "'; expected system, user, assistant or tool");
        if (auto c = j.find("content"); c != j.end() && !c->is_null()) {
            if (c->is_string()) {
                m.content = c->get<std::string>();
            } else if (c->is_array()) {
                for (size_t p = 0; p < c->size(); ++p) {
                    const auto& part = (*c)[p];
                    const std::string part_label = label + " content part " + std::to_string(p);
                    if (!part.is_object()) throw ChatError(part_label + " must be an object");
                    const std::string type = part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
                    if (type != "text")
                        throw ChatError(part_label + " has type '" + type + "'; only text parts are supported");
                    if (!part.contains("text") || !part["text"].is_string())
                        throw ChatError(part_label + " has no \"text\" string");
                    m.content += part["text"].get<std::string>();
                }
            } else {
                throw ChatError(label + " content must be a string, a list of text parts or null");
            }
        }
        if (auto calls = j.find("tool_calls"); calls != j.end() && !calls->is_null()) {
            if (!calls->is_array()) throw ChatError(label + " tool_calls must be an array");
            if (m.role != "assistant" && !calls->empty())
                throw ChatError(label + " has tool_calls but role '" + m.role + "'; only assistant messages call tools");
            for (size_t k = 0; k < calls->size(); ++k) {
                const auto& c = (*calls)[k];
                const std::string call_label = label + " tool call " + std::to_string(k);
                if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
                    throw ChatError(call_label + " has no \"function\" object");
                const auto& f = c["function"];
                ToolCall call;
                if (!f.contains("name") || !f["name"].is_string()) throw ChatError(call_label + " has no function name");
                call.name = f["name"].get<std::string>();
                if (c.contains("id") && c["id"].is_string()) call.id = c["id"].get<std::string>();
                if (auto a = f.find("arguments"); a != f.end()) {
                    if (a->is_string())
                        call.arguments = a->get<std::string>();
                    else if (a->is_object())  // some clients send an object: serialise it compactly
                        call.arguments = k2::compact_json(*a);
                    else if (!a->is_null())
                        throw ChatError(call_label + " arguments must be a JSON string or object");
                }
                m.tool_calls.push_back(std::move(call));
            }
        }
        if (m.role == "tool") {
            auto id = j.find("tool_call_id");
            if (id == j.end() || !id->is_string()) throw ChatError(label + " (role tool) has no \"tool_call_id\" string");
            m.tool_call_id = id->get<std::string>();
        }
        out.push_back(std::move(m));
    }
    return out;
}

}  // namespace halo::tok
