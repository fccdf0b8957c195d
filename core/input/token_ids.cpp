#include "core/input/token_ids.h"

#include <algorithm>
#include <stdexcept>

#include "core/input/excerpt.h"

namespace halo::input {

std::vector<int32_t> parse_token_id_array(std::string_view text, int64_t vocab_size, const std::string& source) {
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    const std::string form = "; " + source + " must hold a JSON array of token ids, such as [9906, 1917]";
    size_t i = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // a UTF-8 byte order mark, as JSON readers allow
    while (i < text.size() && space(text[i])) ++i;
    if (i == text.size()) throw std::runtime_error(source + " is empty" + form);
    if (text[i] != '[')
        throw std::runtime_error(source + " starts with " + quote(text.substr(i, 24)) + " at " +
                                 line_column(text, i) + form);
    ++i;
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 6);
    for (;;) {
        while (i < text.size() && space(text[i])) ++i;
        if (ids.empty() && i < text.size() && text[i] == ']') {
            ++i;
            break;
        }
        if (i == text.size()) throw std::runtime_error(source + " ends inside the array (no closing ])" + form);
        const size_t start = i;
        uint64_t v = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && v <= uint64_t(INT32_MAX))
            v = v * 10 + uint64_t(text[i++] - '0');
        size_t end = i;
        while (end < text.size() && !space(text[end]) && text[end] != ',' && text[end] != ']') ++end;
        const bool is_number = i > start && i == end && (text[start] != '0' || i == start + 1);
        if (!is_number || int64_t(v) >= vocab_size) {
            const std::string element = quote(text.substr(start, std::max<size_t>(end - start, 1)), 24);
            throw std::runtime_error("element " + std::to_string(ids.size()) + " of " + source + "'s array (" + element +
                                     " at " + line_column(text, start) +
                                     ") is not a token id; ids are integers from 0 to " + std::to_string(vocab_size - 1));
        }
        ids.push_back(int32_t(v));
        while (i < text.size() && space(text[i])) ++i;
        if (i < text.size() && text[i] == ',') {
            ++i;
            continue;
        }
        if (i < text.size() && text[i] == ']') {
            ++i;
            break;
        }
        if (i == text.size()) throw std::runtime_error(source + " ends inside the array (no closing ])" + form);
        throw std::runtime_error(source + " has " + quote(text.substr(i, 24)) + " at " + line_column(text, i) +
                                 " where , or ] belongs" + form);
    }
    while (i < text.size() && space(text[i])) ++i;
    if (i != text.size())
        throw std::runtime_error(source + " has " + quote(text.substr(i, 24)) + " after the array at " +
                                 line_column(text, i) + "; give one array");
    return ids;
}
}  // namespace halo::input
