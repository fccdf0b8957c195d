#include "core/input/bounded_json.h"

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <unordered_set>
#include <vector>

#include "core/input/excerpt.h"

namespace halo::input {
namespace {

// One open container while parsing: the keys seen so far (objects) and the key being read.
struct Frame {
    bool is_object = false;
    std::unordered_set<std::string> keys;
    std::string key;
};

std::string path_text(const std::vector<Frame>& frames) {
    std::string path;
    for (size_t i = 0; i + 1 < frames.size(); ++i) {  // the innermost frame is the object itself
        if (frames[i].is_object) {
            if (!path.empty()) path += '.';
            path += frames[i].key.size() > 40 ? frames[i].key.substr(0, 40) + "..." : frames[i].key;
        } else {
            path += "[]";
        }
    }
    return path;
}

// The reason nlohmann gives, without its prefix and without the "last read" token (which may be huge).
std::string syntax_reason(const char* what) {
    std::string s(what);
    if (const size_t cut = s.find("; last read"); cut != std::string::npos) s.resize(cut);
    if (const size_t col = s.find("column "); col != std::string::npos)
        if (const size_t colon = s.find(": ", col); colon != std::string::npos) s = s.substr(colon + 2);
    if (s.size() > 120) s = s.substr(0, 120) + "...";
    return s;
}

template <class Json>
Json parse_under_limits(std::string_view text, const JsonLimits& limits, const std::string& source) {
    if (text.size() > limits.max_bytes)
        throw JsonInputError(source + " is " + std::to_string(text.size()) + " bytes, more than the " +
                             std::to_string(limits.max_bytes) + " (" + byte_size_text(limits.max_bytes) +
                             ") allowed for " + limits.what_is_it + "; check that it is the right file");
    size_t where = 0;
    if (json_depth(text, limits.max_depth, &where) > limits.max_depth)
        throw JsonInputError(source + " nests JSON more than " + std::to_string(limits.max_depth) +
                             " levels deep (at " + line_column(text, where) + "), more than " + limits.what_is_it +
                             " may; check that it is the right file");

    // nlohmann's reader stops at a NUL byte as if the text ended there; JSON has no place for one, so refuse it
    // rather than ignore what follows.
    if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
        throw JsonInputError(source + " is not valid JSON: it holds a NUL byte at " + line_column(text, nul));

    std::vector<Frame> frames;
    const auto on_event = [&](int /*depth*/, nlohmann::json::parse_event_t event, Json& parsed) -> bool {
        using E = nlohmann::json::parse_event_t;
        switch (event) {
        case E::object_start:
            frames.push_back(Frame{true, {}, {}});
            break;
        case E::array_start:
            frames.push_back(Frame{false, {}, {}});
            break;
        case E::object_end:
        case E::array_end:
            if (!frames.empty()) frames.pop_back();
            break;
        case E::key: {
            Frame& f = frames.back();
            f.key = parsed.template get<std::string>();
            if (!f.keys.insert(f.key).second) {
                const std::string path = path_text(frames);
                throw JsonInputError(source + " has the key " + quote(f.key, kNameBytes) + " twice in " +
                                     (path.empty() ? std::string("its top-level object") : "the object at " + quote(path)) +
                                     "; remove one of them (JSON readers disagree on which one counts)");
            }
            break;
        }
        case E::value:
            break;
        }
        return true;
    };
    try {
        return Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        const size_t at = e.byte > 0 ? e.byte - 1 : 0;
        const size_t from = at > 16 ? at - 16 : 0;
        throw JsonInputError(source + " is not valid JSON: " + syntax_reason(e.what()) + " at " +
                             line_column(text, at) + ", near " + quote(text.substr(from, 32), 40));
    } catch (const nlohmann::json::out_of_range& e) {
        throw JsonInputError(source + " is not usable JSON: it holds a number too large for a double");
    } catch (const nlohmann::json::exception& e) {
        throw JsonInputError(source + " is not valid JSON (" + syntax_reason(e.what()) + ")");
    }
}

}  // namespace

int json_depth(std::string_view text, int stop_above, size_t* where) {
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > stop_above) {
                    if (where) *where = i;
                    return deepest;
                }
            }
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

std::string byte_size_text(uint64_t bytes) {
    char buf[48];
    if (bytes >= 1000ull * 1000 * 1000) {
        std::snprintf(buf, sizeof buf, "%.1f GB", double(bytes) / 1e9);
    } else if (bytes >= 1000ull * 1000) {
        std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
    } else if (bytes >= 10000) {
        std::snprintf(buf, sizeof buf, "%.0f KB", double(bytes) / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
    }
    return buf;
}

nlohmann::json parse_json(std::string_view text, const JsonLimits& limits, const std::string& source) {
    return parse_under_limits<nlohmann::json>(text, limits, source);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const JsonLimits& limits, const std::string& source) {
    return parse_under_limits<nlohmann::ordered_json>(text, limits, source);
}

nlohmann::json read_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
    const std::string source = path.string();
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > limits.max_bytes)
        throw JsonInputError(source + " is " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(limits.max_bytes) + " (" + byte_size_text(limits.max_bytes) +
                             ") allowed for " + limits.what_is_it + "; check that it is the right file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw JsonInputError(source + " cannot be opened: " + std::strerror(errno));
    std::string text;
    text.resize(limits.max_bytes < 65536 ? limits.max_bytes + 1 : 65536);
    size_t used = 0;
    while (in) {  // read at most max_bytes + 1, whatever the file claims to be
        if (used == text.size()) {
            if (text.size() > limits.max_bytes) break;
            text.resize(std::min<size_t>(text.size() * 2, limits.max_bytes + 1));
        }
        in.read(text.data() + used, std::streamsize(text.size() - used));
        used += size_t(in.gcount());
    }
    if (in.bad()) throw JsonInputError(source + " cannot be read: " + std::strerror(errno));
    text.resize(used);
    return parse_json(text, limits, source);
}

}  // namespace halo::input
