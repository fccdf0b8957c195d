// Chat prompts in the K2 format (chat_format.h): OpenAI-style messages -> prompt string or token ids.
//
//   std::vector<ChatMessage> msgs = parse_chat_messages(request["messages"]);   // or build them directly
//   std::vector<TokenId> ids = encode_chat(tok, msgs, request.value("tools", ordered_json()), true);
//
// encode_chat's default (ContentSpecials::as_text) is the safe one: only the template's own markers become
// special ids; every message content, role name, tool JSON, call header and argument is encoded with specials NOT
// recognised, so a user writing "<|im_end|>" gets the text, not the token. ContentSpecials::as_special reproduces
// Hugging Face (encode(render_chat(...), allow_special=true)) and should only be used for trusted content.
// All functions are thread-safe.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"

namespace halo::tok {

// A chat request that cannot be rendered; what() names the message and field.
class ChatError : public TokenizerError {
public:
    using TokenizerError::TokenizerError;
};

struct ToolCall {
    std::string id;         // e.g. "functions.get_weather:0" (informative: the K2 format renders name + index)
    std::string name;       // function name
    std::string arguments;  // the arguments as JSON text, rendered verbatim
};

struct ChatMessage {
    std::string role;                  // "system", "user", "assistant" or "tool"
    std::string content;               // the text (a list of text parts concatenated; null = "")
    std::vector<ToolCall> tool_calls;  // assistant messages: calls rendered after the content
    std::string tool_call_id;          // tool messages: the id of the call this is the result of
};

// One part of a rendered prompt: a template marker (a special-token name) or a run of text. Adjacent text is
// merged into one segment, and empty text is left out.
struct ChatSegment {
    std::string text;
    bool is_marker = false;
};

enum class ContentSpecials {
    as_text,     // default: special-token strings inside contents stay text (safe for untrusted content)
    as_special,  // special-token strings anywhere become special ids (the Hugging Face path)
};

// The prompt as segments. `tools`: null, or an array of OpenAI function tools (an empty array declares nothing).
// Throws ChatError for an unknown role or tools that are not an array.
std::vector<ChatSegment> render_chat_segments(std::span<const ChatMessage> messages,
                                              const nlohmann::ordered_json& tools, bool add_generation_prompt);

// The prompt string (the segments concatenated): byte-exact K2 format.
std::string render_chat(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools = nullptr,
                        bool add_generation_prompt = true);

// Prompt token ids. Throws ChatError when the tokenizer lacks a marker the prompt needs.
std::vector<TokenId> encode_chat(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                 const nlohmann::ordered_json& tools = nullptr, bool add_generation_prompt = true,
                                 ContentSpecials content_specials = ContentSpecials::as_text);

// Messages from an OpenAI-style JSON array: {"role", "content": string | [{"type": "text", "text"}] | null,
// "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": JSON string or object}}],
// "tool_call_id"}. Throws ChatError naming the message index and field for anything else. The JSON must come from a
// bounded parse (core/input/bounded_json.h, kRequestBody): arguments objects are re-serialised recursively.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::ordered_json& messages);

}  // namespace halo::tok
