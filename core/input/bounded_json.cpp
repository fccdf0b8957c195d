#include "core/input/bounded_json.h"

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
        throw JsonInputError(too_large(source, text.size(), limits.max_bytes, limits.what_is_it));
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

nlohmann::json parse_json(std::string_view text, const JsonLimits& limits, const std::string& source) {
    return parse_under_limits<nlohmann::json>(text, limits, source);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const JsonLimits& limits, const std::string& source) {
    return parse_under_limits<nlohmann::ordered_json>(text, limits, source);
}

nlohmann::json read_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
    return parse_json(read_bounded_file(path, limits.max_bytes, limits.what_is_it), limits, path.string());
}

}  // namespace halo::input
