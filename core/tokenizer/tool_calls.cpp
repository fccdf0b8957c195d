#include "core/tokenizer/tool_calls.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/input/bounded_json.h"
#include "core/tokenizer/chat_format.h"

namespace halo::tok {
namespace {

constexpr size_t npos = std::string_view::npos;

std::string_view trim(std::string_view s) {
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// "functions.get_weather:0" -> name "get_weather", index 0.
void parse_header(std::string_view header, ParsedToolCall& call) {
    header = trim(header);
    call.id = std::string(header);
    if (header.starts_with(k2::kFunctionPrefix)) header.remove_prefix(k2::kFunctionPrefix.size());
    const size_t colon = header.rfind(':');
    if (colon != npos) {
        const std::string_view digits = header.substr(colon + 1);
        if (!digits.empty() && digits.size() <= 9 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            call.index = std::stoi(std::string(digits));
            header = header.substr(0, colon);
        }
    }
    call.name = std::string(trim(header));
}

// A JSON object within the limits for generated arguments (a model can generate 100,000 nested brackets).
bool is_json_object(std::string_view text) {
    if (text.empty() || text.front() != '{') return false;
    try {
        return input::parse_json(text, input::kToolCallArguments, "arguments").is_object();
    } catch (const input::JsonInputError&) {
        return false;
    }
}

// Calls inside one section body [begin, end) of `text`.
void parse_section(std::string_view text, size_t begin, size_t end, ParsedReply& reply) {
    const std::string_view body = text.substr(begin, end - begin);
    size_t pos = 0;
    while (pos < body.size()) {
        const size_t call_begin = body.find(k2::kToolCallBegin, pos);
        if (!trim(body.substr(pos, std::min(call_begin, body.size()) - pos)).empty()) reply.well_formed = false;
        if (call_begin == npos) break;
        const size_t header_begin = call_begin + k2::kToolCallBegin.size();
        const size_t call_end = body.find(k2::kToolCallEnd, header_begin);
        const size_t next_call = body.find(k2::kToolCallBegin, header_begin);
        const size_t limit = std::min({call_end, next_call, body.size()});
        const size_t arg_begin = body.find(k2::kToolCallArgumentBegin, header_begin);
        ParsedToolCall call;
        if (arg_begin < limit) {
            parse_header(body.substr(header_begin, arg_begin - header_begin), call);
            const size_t args = arg_begin + k2::kToolCallArgumentBegin.size();
            call.arguments = std::string(trim(body.substr(args, limit - args)));
        } else {
            parse_header(body.substr(header_begin, limit - header_begin), call);
            reply.well_formed = false;
        }
        call.complete = limit == call_end;
        if (!call.complete) reply.well_formed = false;
        call.arguments_valid = is_json_object(call.arguments);
        if (call.name.empty()) reply.well_formed = false;
        reply.tool_calls.push_back(std::move(call));
        pos = limit == call_end ? call_end + k2::kToolCallEnd.size() : limit;
    }
}

}  // namespace

ParsedReply parse_tool_calls(std::string_view text) {
    ParsedReply reply;
    size_t pos = 0;
    while (pos < text.size()) {
        const size_t section = text.find(k2::kToolCallsSectionBegin, pos);
        const size_t bare_call = text.find(k2::kToolCallBegin, pos);  // a call without its section marker
        const size_t start = std::min(section, bare_call);
        if (start == npos) {
            reply.content.append(text.substr(pos));
            break;
        }
        reply.content.append(text.substr(pos, start - pos));
        size_t body_begin = start;
        if (start == section) {
            body_begin = section + k2::kToolCallsSectionBegin.size();
        } else {
            reply.well_formed = false;
        }
        const size_t section_end = text.find(k2::kToolCallsSectionEnd, body_begin);
        parse_section(text, body_begin, std::min(section_end, text.size()), reply);
        if (section_end == npos) {
            reply.well_formed = false;
            break;
        }
        pos = section_end + k2::kToolCallsSectionEnd.size();
    }
    return reply;
}

}  // namespace halo::tok
