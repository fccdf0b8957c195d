#include "core/input/excerpt.h"

#include <cstdint>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/input/utf8.h"

namespace halo::input {
namespace {

// Code point of the well-formed UTF-8 sequence of `n` bytes at s[i].
uint32_t code_point(std::string_view s, size_t i, size_t n) {
    const auto b = [&](size_t k) { return uint32_t(static_cast<unsigned char>(s[i + k])); };
    if (n == 2) return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
    if (n == 3) return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
    return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F);
}

// C1 controls (a terminal may act on them) and the bidirectional controls (they reorder what a reader sees).
bool is_invisible_control(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

// Appends `text` escaped until `out` holds `budget` bytes; returns false when it had to stop early. Printable ASCII
// and well-formed UTF-8 stay as they are; \n and \t are written so; other control bytes and ill-formed bytes as \xNN;
// C1 and bidirectional controls as \u{XXXX}. With `quote_char`, that character and backslash are escaped too.
bool append_escaped(std::string& out, std::string_view text, size_t budget, char quote_char = '\'') {
    size_t i = 0;
    char hex[16];
    while (i < text.size()) {
        if (out.size() >= budget) return false;
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F) {
            if (quote_char && (c == '\\' || c == static_cast<unsigned char>(quote_char))) out += '\\';
            out += char(c);
            ++i;
        } else if (c == '\n') {
            out += "\\n";
            ++i;
        } else if (c == '\t') {
            out += "\\t";
            ++i;
        } else if (const size_t n = c >= 0x80 ? utf8_sequence_length(text, i) : 0; n > 0) {
            if (const uint32_t cp = code_point(text, i, n); is_invisible_control(cp)) {
                std::snprintf(hex, sizeof hex, "\\u{%04X}", unsigned(cp));
                out += hex;
            } else {
                out.append(text.substr(i, n));
            }
            i += n;
        } else {
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
            ++i;
        }
    }
    return true;
}

template <class Json>
void write_excerpt(const Json& v, std::string& out, size_t budget, int depth) {
    if (out.size() >= budget) return;
    constexpr int kMaxShownDepth = 4;
    switch (v.type()) {
    case nlohmann::json::value_t::object:
        if (depth >= kMaxShownDepth) {
            out += v.empty() ? "{}" : "{...}";
            return;
        }
        out += '{';
        for (auto it = v.begin(); it != v.end(); ++it) {
            if (it != v.begin()) out += ',';
            if (out.size() >= budget) return;
            out += '"';
            if (!append_escaped(out, it.key(), budget)) return;
            out += "\":";
            write_excerpt(it.value(), out, budget, depth + 1);
        }
        out += '}';
        return;
    case nlohmann::json::value_t::array:
        if (depth >= kMaxShownDepth) {
            out += v.empty() ? "[]" : "[...]";
            return;
        }
        out += '[';
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) out += ',';
            if (out.size() >= budget) return;
            write_excerpt(v[i], out, budget, depth + 1);
        }
        out += ']';
        return;
    case nlohmann::json::value_t::string:
        out += '"';
        if (append_escaped(out, v.template get_ref<const std::string&>(), budget)) out += '"';
        return;
    case nlohmann::json::value_t::binary:
        out += "<binary>";
        return;
    default:
        break;
    }
    out += v.dump();  // a scalar: short
}

template <class Json>
std::string excerpt_of(const Json& v, size_t max_bytes) {
    std::string out;
    write_excerpt(v, out, max_bytes, 0);
    if (out.size() >= max_bytes) {
        out.resize(max_bytes);
        // Do not end inside a UTF-8 sequence.
        while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
        if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
        out += "...";
    }
    return out;
}

}  // namespace

std::string quote(std::string_view text, size_t max_bytes) {
    std::string out = "'";
    const size_t budget = max_bytes + 1;
    if (!append_escaped(out, text, budget)) {
        out += "...' (" + std::to_string(text.size()) + " bytes)";
        return out;
    }
    return out + "'";
}

std::string one_line(std::string_view message, size_t max_bytes) {
    std::string all;
    append_escaped(all, message, SIZE_MAX, /*quote_char=*/0);
    if (all.size() <= max_bytes) return all;
    // Keep the start (what failed) and the end (what to do), cut between them on UTF-8 boundaries.
    const auto boundary = [&](size_t i) {
        while (i > 0 && i < all.size() && (static_cast<unsigned char>(all[i]) & 0xC0) == 0x80) --i;
        return i;
    };
    const size_t head = boundary(max_bytes * 3 / 5), tail = boundary(all.size() - max_bytes * 2 / 5);
    return all.substr(0, head) + " ... (" + std::to_string(message.size()) + " bytes in all) ... " + all.substr(tail);
}

std::string json_excerpt(const nlohmann::json& value, size_t max_bytes) { return excerpt_of(value, max_bytes); }
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_bytes) { return excerpt_of(value, max_bytes); }

std::string line_column(std::string_view text, size_t offset) {
    if (offset > text.size()) offset = text.size();
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < offset; ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

}  // namespace halo::input
