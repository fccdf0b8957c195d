// JSON from files, pipes and (later) the network, parsed under limits: a size limit, a nesting-depth limit and no
// duplicate keys, each violation reported as one bounded sentence that names the source. Every parser of untrusted
// JSON in Halo goes through here; nothing downstream (dump(), comparisons, conversions) then sees unbounded nesting.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/input/read_file.h"

namespace halo::input {

struct JsonLimits {
    size_t max_bytes;       // the whole text
    int max_depth;          // containers inside containers: {"a":[1]} is depth 2
    const char* what_is_it; // names the kind of input in messages, e.g. "a model's config.json"
};

// Limits per kind of input. The real files are far inside them (config.json ~3 KB at depth 4; the 48B model's
// index ~150 KB at depth 2; tokenizer_config.json ~40 KB at depth 3; safetensors headers use the format's own
// 100 MB limit).
constexpr JsonLimits kConfigJson{16u << 20, 32, "a model config.json"};
constexpr JsonLimits kIndexJson{256u << 20, 16, "a safetensors index"};
constexpr JsonLimits kSafetensorsHeader{100u << 20, 16, "a safetensors header"};
constexpr JsonLimits kTokenizerConfigJson{64u << 20, 32, "a tokenizer_config.json"};
constexpr JsonLimits kRequestBody{64u << 20, 64, "a request body"};  // chat messages and tools, as a client sends them
constexpr JsonLimits kToolCallArguments{16u << 20, 64, "a tool call's arguments"};  // as the model generates them

// A JSON input refused by the limits or the grammar. The message is a full sentence naming the source.
class JsonInputError : public InputError {
public:
    using InputError::InputError;
};

// Parses `text` (named `source` in messages, e.g. a path or "stdin") under `limits`. Throws JsonInputError on:
// more bytes than the limit; nesting deeper than the limit (checked before parsing, with line and column); a syntax
// error (line, column and a quoted excerpt); ill-formed UTF-8 in a string; a number out of double range; the same key
// twice in one object (the key and the object's path are named, since parsers disagree on which one wins).
nlohmann::json parse_json(std::string_view text, const JsonLimits& limits, const std::string& source);
nlohmann::ordered_json parse_ordered_json(std::string_view text, const JsonLimits& limits, const std::string& source);

// Reads a whole file (read_bounded_file) and parses it as above; the source is the path. Throws InputError when the
// file is too large or unreadable, JsonInputError when its JSON is refused.
nlohmann::json read_json_file(const std::filesystem::path& path, const JsonLimits& limits);

// Nesting depth of the JSON text at its deepest point, scanning strings correctly; stops early and returns a value
// above `stop_above` as soon as it is exceeded, with *where set to the byte offset. For the pre-parse check.
int json_depth(std::string_view text, int stop_above, size_t* where = nullptr);

}  // namespace halo::input
