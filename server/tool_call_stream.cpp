#include "server/tool_call_stream.h"

#include <algorithm>
#include <initializer_list>

#include "core/tokenizer/chat_format.h"
#include "core/tokenizer/tool_calls.h"

namespace halo::server {

namespace k2 = tok::k2;

namespace {

constexpr size_t npos = std::string::npos;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Length of the longest suffix of `text` that is a proper prefix of one of `markers`: text that may still turn
// into a marker when more arrives.
size_t marker_prefix_tail(std::string_view text, std::initializer_list<std::string_view> markers) {
    size_t best = 0;
    for (std::string_view m : markers)
        for (size_t n = std::min(text.size(), m.size() - 1); n > best; --n)
            if (text.substr(text.size() - n) == m.substr(0, n)) {
                best = n;
                break;
            }
    return best;
}

// The first of `markers` in `text`: its position and length (npos, 0 when none).
std::pair<size_t, size_t> first_marker(std::string_view text, std::initializer_list<std::string_view> markers) {
    std::pair<size_t, size_t> best{npos, 0};
    for (std::string_view m : markers) {
        const size_t at = text.find(m);
        if (at < best.first) best = {at, m.size()};
    }
    return best;
}

void append(std::vector<ToolCallDelta>& out, ToolCallDelta::Kind kind, int index, std::string_view text) {
    if (text.empty()) return;
    if (!out.empty() && out.back().kind == kind && out.back().index == index) {
        out.back().text.append(text);
        return;
    }
    ToolCallDelta d;
    d.kind = kind;
    d.index = index;
    d.text = std::string(text);
    out.push_back(std::move(d));
}

}  // namespace

std::vector<ToolCallDelta> ToolCallStream::push(std::string_view text) {
    std::vector<ToolCallDelta> out;
    buf_.append(text);
    run(false, out);
    return out;
}

std::vector<ToolCallDelta> ToolCallStream::finish() {
    std::vector<ToolCallDelta> out;
    run(true, out);
    return out;
}

void ToolCallStream::emit_content(std::string_view text, std::vector<ToolCallDelta>& out) {
    append(out, ToolCallDelta::Kind::content, 0, text);
}

void ToolCallStream::emit_arguments(std::string_view text, bool at_end, std::vector<ToolCallDelta>& out) {
    // The parser trims the arguments: leading whitespace is dropped, trailing whitespace waits for more text.
    if (!arguments_started_) {
        while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
        if (text.empty()) return;
        arguments_started_ = true;
    }
    size_t keep = text.size();
    while (keep > 0 && is_space(text[keep - 1])) --keep;
    if (keep == 0) {
        if (!at_end) held_space_.append(text);
        return;
    }
    std::string piece = std::move(held_space_);
    held_space_.clear();
    piece.append(text.substr(0, keep));
    append(out, ToolCallDelta::Kind::arguments, calls_ - 1, piece);
    if (!at_end) held_space_.assign(text.substr(keep));
}

void ToolCallStream::start_call(std::string_view header, std::vector<ToolCallDelta>& out) {
    // The header parsed exactly as the whole-reply parser does, by handing it a one-call reply.
    std::string one = std::string(k2::kToolCallsSectionBegin) + std::string(k2::kToolCallBegin) + std::string(header) +
                      std::string(k2::kToolCallArgumentBegin) + "{}" + std::string(k2::kToolCallEnd) +
                      std::string(k2::kToolCallsSectionEnd);
    const tok::ParsedReply parsed = tok::parse_tool_calls(one);
    ToolCallDelta d;
    d.kind = ToolCallDelta::Kind::call_start;
    d.index = calls_++;
    if (!parsed.tool_calls.empty()) {
        d.id = parsed.tool_calls.front().id;
        d.name = parsed.tool_calls.front().name;
    }
    out.push_back(std::move(d));
    arguments_started_ = false;
    held_space_.clear();
}

void ToolCallStream::run(bool at_end, std::vector<ToolCallDelta>& out) {
    while (true) {
        const std::string_view buf = buf_;
        if (state_ == State::content) {
            // A section starts at its marker, or (ill-formed) at a call marker with no section around it.
            const size_t section = buf.find(k2::kToolCallsSectionBegin);
            const size_t bare = buf.find(k2::kToolCallBegin);
            if (section == npos && bare == npos) {
                const size_t hold = at_end ? 0 : marker_prefix_tail(buf, {k2::kToolCallsSectionBegin, k2::kToolCallBegin});
                emit_content(buf.substr(0, buf.size() - hold), out);
                buf_.erase(0, buf.size() - hold);
                return;
            }
            const size_t start = std::min(section, bare);
            emit_content(buf.substr(0, start), out);
            buf_.erase(0, start == section ? start + k2::kToolCallsSectionBegin.size() : start);
            state_ = State::section;
        } else if (state_ == State::section) {
            // Between calls: anything but a call is dropped (the parser leaves it out too).
            const auto [at, len] = first_marker(buf, {k2::kToolCallBegin, k2::kToolCallsSectionEnd});
            if (at == npos) {
                const size_t hold = at_end ? 0 : marker_prefix_tail(buf, {k2::kToolCallBegin, k2::kToolCallsSectionEnd});
                buf_.erase(0, buf.size() - hold);
                return;
            }
            const bool call = buf.compare(at, len, k2::kToolCallBegin) == 0;
            buf_.erase(0, at + len);
            state_ = call ? State::header : State::content;
        } else if (state_ == State::header) {
            // The header ends at the argument marker, or (a call without arguments) where the call or section ends.
            const auto [at, len] = first_marker(buf, {k2::kToolCallArgumentBegin, k2::kToolCallEnd, k2::kToolCallBegin,
                                                      k2::kToolCallsSectionEnd});
            if (at == npos) {
                if (!at_end) return;
                start_call(buf, out);
                buf_.clear();
                return;
            }
            start_call(buf.substr(0, at), out);
            if (buf.compare(at, len, k2::kToolCallArgumentBegin) == 0) {
                buf_.erase(0, at + len);
                state_ = State::arguments;
            } else {
                const bool call_end = buf.compare(at, len, k2::kToolCallEnd) == 0;
                buf_.erase(0, call_end ? at + len : at);
                state_ = State::section;
            }
        } else {  // arguments, up to the call's end (or, cut short, the next call or the section's end)
            const auto [at, len] = first_marker(buf, {k2::kToolCallEnd, k2::kToolCallBegin, k2::kToolCallsSectionEnd});
            if (at == npos) {
                const size_t hold =
                    at_end ? 0 : marker_prefix_tail(buf, {k2::kToolCallEnd, k2::kToolCallBegin, k2::kToolCallsSectionEnd});
                emit_arguments(buf.substr(0, buf.size() - hold), at_end, out);
                buf_.erase(0, buf.size() - hold);
                return;
            }
            emit_arguments(buf.substr(0, at), true, out);
            const bool call_end = buf.compare(at, len, k2::kToolCallEnd) == 0;
            buf_.erase(0, call_end ? at + len : at);
            state_ = State::section;
        }
    }
}

}  // namespace halo::server
