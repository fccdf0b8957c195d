// Typed reads of request-body fields with OpenAI-style 400s naming the field. Internal to the request parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace halo::server::fields {

using Json = nlohmann::ordered_json;

// The field, or null when it is absent or JSON null (both mean "use the default").
const Json* find(const Json& body, const char* name);

// A short description of a JSON value's type for messages: "a string", "an array", ...
const char* type_name(const Json& v);

bool get_bool(const Json& body, const char* name, bool fallback);
std::optional<std::string> get_string(const Json& body, const char* name);
// A number in [lo, hi] (finite).
std::optional<double> get_number(const Json& body, const char* name, double lo, double hi);
// A whole number in [lo, hi] (a JSON integer, or a float with no fraction such as 5.0).
std::optional<int64_t> get_integer(const Json& body, const char* name, int64_t lo, int64_t hi);
// The same for a value already found (`param` names it in messages).
int64_t as_integer(const Json& v, const std::string& param, int64_t lo, int64_t hi);

}  // namespace halo::server::fields
