#include "server/request_fields.h"

#include <cmath>

namespace halo::server::fields {

const Json* find(const Json& body, const char* name) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
}

const char* type_name(const Json& v) {
    switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    default: return "an unsupported value";
    }
}

bool get_bool(const Json& body, const char* name, bool fallback) {
    const Json* v = find(body, name);
    if (!v) return fallback;
    if (!v->is_boolean()) throw bad_field(name, std::string(name) + " must be true or false, not " + type_name(*v));
    return v->get<bool>();
}

std::optional<std::string> get_string(const Json& body, const char* name) {
    const Json* v = find(body, name);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw bad_field(name, std::string(name) + " must be a string, not " + type_name(*v));
    return v->get<std::string>();
}

namespace {

std::string range_text(double lo, double hi) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "from %g to %g", lo, hi);
    return buf;
}

}  // namespace

std::optional<double> get_number(const Json& body, const char* name, double lo, double hi) {
    const Json* v = find(body, name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw bad_field(name, std::string(name) + " must be a number, not " + type_name(*v));
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
        throw bad_field(name, std::string(name) + " must be a number " + range_text(lo, hi));
    return x;
}

int64_t as_integer(const Json& v, const std::string& param, int64_t lo, int64_t hi) {
    const std::string range = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (v.is_number_unsigned()) {
        const uint64_t x = v.get<uint64_t>();
        if (x > uint64_t(hi) || (lo > 0 && x < uint64_t(lo))) throw bad_field(param, param + " must be " + range);
        return int64_t(x);
    }
    if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        if (x < lo || x > hi) throw bad_field(param, param + " must be " + range);
        return x;
    }
    if (v.is_number_float()) {
        const double x = v.get<double>();
        if (!std::isfinite(x) || std::fabs(x) > 9e18 || x != std::floor(x) || x < double(lo) || x > double(hi))
            throw bad_field(param, param + " must be " + range);
        return int64_t(x);
    }
    throw bad_field(param, param + " must be " + range + ", not " + type_name(v));
}

std::optional<int64_t> get_integer(const Json& body, const char* name, int64_t lo, int64_t hi) {
    const Json* v = find(body, name);
    if (!v) return std::nullopt;
    return as_integer(*v, name, lo, hi);
}

}  // namespace halo::server::fields
