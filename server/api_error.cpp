#include "server/api_error.h"

#include <nlohmann/json.hpp>

#include "core/input/excerpt.h"

namespace halo::server {

namespace {

constexpr size_t kMessageBytes = 480;  // an error message's length, about (before JSON escaping)

nlohmann::json string_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string type, std::string code, std::string param)
    : std::runtime_error(input::one_line(message, kMessageBytes)), status_(status), type_(std::move(type)),
      code_(std::move(code)), param_(input::one_line(param, 120)) {}

ApiError bad_field(const std::string& param, const std::string& message, const std::string& code) {
    return ApiError(400, message, "invalid_request_error", code, param);
}

std::string openai_error_body(const ApiError& e) {
    return dump({{"error",
                  {{"message", e.what()}, {"type", e.type()}, {"param", string_or_null(e.param())},
                   {"code", string_or_null(e.code())}}}});
}

std::string anthropic_error_body(const ApiError& e) {
    const char* type = "invalid_request_error";
    switch (e.status()) {
    case 401: type = "authentication_error"; break;
    case 403: type = "permission_error"; break;
    case 404: type = "not_found_error"; break;
    case 413: type = "request_too_large"; break;
    case 429: type = "rate_limit_error"; break;
    case 503: type = "overloaded_error"; break;
    default:
        if (e.status() >= 500) type = "api_error";
    }
    return dump({{"type", "error"}, {"error", {{"type", type}, {"message", e.what()}}}});
}

}  // namespace halo::server
