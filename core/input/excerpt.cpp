#include "core/input/excerpt.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace halo::input {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (2..4), or 0 when it is ill-formed or cut off.
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    return n;
}

// Appends `text` escaped (see quote()) until `out` holds `budget` bytes; returns false when it had to stop early.
bool append_escaped(std::string& out, std::string_view text, size_t budget) {
    size_t i = 0;
    while (i < text.size()) {
        if (out.size() >= budget) return false;
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F) {
            if (c == '\\' || c == '\'') out += '\\';
            out += char(c);
            ++i;
        } else if (c == '\n') {
            out += "\\n";
            ++i;
        } else if (c == '\t') {
            out += "\\t";
            ++i;
        } else if (const size_t n = c >= 0x80 ? utf8_sequence_length(text, i) : 0; n > 0) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            char hex[8];
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
    case nlohmann::json::value_t::number_float: {
        const double d = v.template get<double>();
        if (!std::isfinite(d)) {
            out += "null";
            return;
        }
        break;
    }
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
