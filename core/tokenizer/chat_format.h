// The K2 chat format in one place (golden README section 5, KIMI_LINEAR.md 7.5): the markers, the default system
// prompt, the tools serialiser and the equivalent Jinja template. If the real checkpoint's template differs (see
// the README's caution: later K2 templates use another default prompt, tojson separators or sorted keys), this is
// the file to change.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace halo::tok::k2 {

// Inserted as a system message when the first message is not one (no final period, as in the K2 template).
inline constexpr std::string_view kDefaultSystemPrompt = "You are a helpful assistant";

// Template markers (special-token names).
inline constexpr std::string_view kImSystem = "<|im_system|>";
inline constexpr std::string_view kImUser = "<|im_user|>";
inline constexpr std::string_view kImAssistant = "<|im_assistant|>";
inline constexpr std::string_view kImMiddle = "<|im_middle|>";
inline constexpr std::string_view kImEnd = "<|im_end|>";
inline constexpr std::string_view kToolCallsSectionBegin = "<|tool_calls_section_begin|>";
inline constexpr std::string_view kToolCallsSectionEnd = "<|tool_calls_section_end|>";
inline constexpr std::string_view kToolCallBegin = "<|tool_call_begin|>";
inline constexpr std::string_view kToolCallArgumentBegin = "<|tool_call_argument_begin|>";
inline constexpr std::string_view kToolCallEnd = "<|tool_call_end|>";

// Role names written between a role marker and <|im_middle|>, and the tool-declaration pseudo-role.
inline constexpr std::string_view kToolDeclareRole = "tool_declare";
// A tool result's content is rendered as kToolReturnPrefix + tool_call_id + "\n" + content.
inline constexpr std::string_view kToolReturnPrefix = "## Return of ";
// A call header is kFunctionPrefix + name + ":" + index (index counts calls across the conversation from 0).
inline constexpr std::string_view kFunctionPrefix = "functions.";

// The tools list as embedded after tool_declare: Python json.dumps(tools, ensure_ascii=False,
// separators=(",", ":")): no whitespace, keys in the order given (so pass ordered_json), raw UTF-8, '"', '\' and
// control characters escaped, '/' not escaped. Ill-formed UTF-8 in strings becomes U+FFFD.
std::string serialize_tools(const nlohmann::ordered_json& tools);

// Any JSON value in that same compact form (used for tool-call arguments given as an object).
std::string compact_json(const nlohmann::ordered_json& value);

// The same format as a Jinja chat_template (written into tokenizer_config.json by tools/vocab; Halo itself renders
// natively and never interprets Jinja).
extern const char* const kChatTemplateJinja;

}  // namespace halo::tok::k2
