// Parsing a generated assistant reply in the K2 format back into content and structured tool calls:
//
//   content<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>
//   {"city": "Paris"}<|tool_call_end|>...<|tool_calls_section_end|>
//
// Decode the generated ids (the markers decode to their names) and pass the text here. Model output may be
// truncated or malformed: the parser never throws or crashes, returns whatever it could recover and says whether
// the text was well formed. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace halo::tok {

struct ParsedToolCall {
    std::string id;                // the call header as generated, trimmed: "functions.get_weather:0"
    std::string name;              // "get_weather": the header without "functions." and ":<index>"
    int index = -1;                // the number after the last ':', -1 when missing or not a number
    std::string arguments;         // the argument text as generated (whitespace-trimmed), normally a JSON object
    bool arguments_valid = false;  // arguments parse as a JSON object (no duplicate keys, nested at most 64 deep)
    bool complete = false;         // the call ended with <|tool_call_end|>
};

struct ParsedReply {
    std::string content;                     // all text outside tool-call sections, in order
    std::vector<ParsedToolCall> tool_calls;  // in order of appearance
    bool well_formed = true;                 // false when a marker was missing, out of order, or stray text sat
                                             // between calls; what could be recovered is still returned
};

// Splits `generated_text` into content and tool calls. Never throws (except std::bad_alloc).
ParsedReply parse_tool_calls(std::string_view generated_text);

}  // namespace halo::tok
