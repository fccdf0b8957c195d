#include "core/tokenizer/chat_format.h"

namespace halo::tok::k2 {

std::string compact_json(const nlohmann::ordered_json& value) {
    return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string serialize_tools(const nlohmann::ordered_json& tools) { return compact_json(tools); }

const char* const kChatTemplateJinja =
    "{%- if tools -%}{{- '<|im_system|>tool_declare<|im_middle|>' + (tools | tojson(separators=(',', ':'))) + "
    "'<|im_end|>' -}}{%- endif -%}{%- set ns = namespace(idx=0) -%}{%- for message in messages -%}{%- if "
    "loop.first and message['role'] != 'system' -%}{{- '<|im_system|>system<|im_middle|>You are a helpful "
    "assistant<|im_end|>' -}}{%- endif -%}{%- if message['role'] == 'system' -%}{{- "
    "'<|im_system|>system<|im_middle|>' -}}{%- elif message['role'] == 'user' -%}{{- "
    "'<|im_user|>user<|im_middle|>' -}}{%- elif message['role'] == 'assistant' -%}{{- "
    "'<|im_assistant|>assistant<|im_middle|>' -}}{%- elif message['role'] == 'tool' -%}{{- "
    "'<|im_system|>tool<|im_middle|>## Return of ' + message['tool_call_id'] + '\\n' -}}{%- endif -%}{%- if "
    "message['content'] is string -%}{{- message['content'] -}}{%- elif message['content'] is not none -%}{%- for "
    "part in message['content'] -%}{{- part['text'] -}}{%- endfor -%}{%- endif -%}{%- if message['role'] == "
    "'assistant' and message.get('tool_calls') -%}{{- '<|tool_calls_section_begin|>' -}}{%- for tc in "
    "message['tool_calls'] -%}{{- '<|tool_call_begin|>functions.' + tc['function']['name'] + ':' + (ns.idx | "
    "string) + '<|tool_call_argument_begin|>' + tc['function']['arguments'] + '<|tool_call_end|>' -}}{%- set "
    "ns.idx = ns.idx + 1 -%}{%- endfor -%}{{- '<|tool_calls_section_end|>' -}}{%- endif -%}{{- '<|im_end|>' "
    "-}}{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_assistant|>assistant<|im_middle|>' -}}{%- endif "
    "-%}";

}  // namespace halo::tok::k2
