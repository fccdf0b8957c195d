// An HTTP API error: the status, the OpenAI error fields, and how it is written for each API. Every message is one
// bounded line (input::one_line): nothing a client sent is echoed unbounded.
#pragma once

#include <stdexcept>
#include <string>

namespace halo::server {

class ApiError : public std::runtime_error {
public:
    // `type`: OpenAI's error type ("invalid_request_error", "not_found_error", "server_error", ...); `code`: a short
    // machine-readable reason ("model_not_found"), may be empty; `param`: the request field at fault, may be empty.
    ApiError(int status, const std::string& message, std::string type = "invalid_request_error", std::string code = {},
             std::string param = {});

    int status() const { return status_; }
    const std::string& type() const { return type_; }
    const std::string& code() const { return code_; }
    const std::string& param() const { return param_; }
    int retry_after_s = 0;  // > 0: sent as Retry-After (503)

private:
    int status_;
    std::string type_, code_, param_;
};

// A 400 about one request field.
ApiError bad_field(const std::string& param, const std::string& message, const std::string& code = "invalid_value");

// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
std::string openai_error_body(const ApiError& e);
// {"type": "error", "error": {"type", "message"}} with Anthropic's type for the status.
std::string anthropic_error_body(const ApiError& e);

}  // namespace halo::server
