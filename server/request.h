// Request bodies of the generation endpoints turned into scheduler requests. Each parser takes the raw body and
// either returns a complete GenerationRequest (prompt encoded, limits checked) or throws ApiError with the status and
// field to report. No model is needed: only what is being served (ServingInfo). Thread-safe.
//
//   ApiRequest r = parse_request(Api::chat, req.body, info);   // throws ApiError
//   auto stream = scheduler.submit(std::move(r.generation));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scheduler.h"
#include "core/tokenizer/tokenizer.h"

namespace halo::server {

enum class Api {
    chat,         // POST /v1/chat/completions (OpenAI)
    completions,  // POST /v1/completions (OpenAI, legacy)
    messages,     // POST /v1/messages (Anthropic)
};
const char* api_path(Api api);

// What the server serves, as far as checking a request needs it.
struct ServingInfo {
    std::string model_name;               // requests naming another model get 404
    int64_t context_tokens = 0;           // tokens per sequence (prompt + output)
    const tok::Tokenizer* tokenizer = nullptr;  // null: only token-id prompts (completions) can be served
    int64_t vocab_size = 0;               // the model's (token ids are checked against it)
};

struct ApiRequest {
    Api api = Api::chat;
    GenerationRequest generation;  // prompt ids, max_tokens (capped to fit the context), sampling, stops
    bool stream = false;
    bool include_usage = false;    // OpenAI stream_options.include_usage: a last chunk with the usage
    bool parse_tools = false;      // tools were declared: the output is split into content and tool calls
};

// Limits of what a request may ask for.
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;

// Parses and checks a body for `api`. Throws ApiError (400 with the field as param; 404 model_not_found).
ApiRequest parse_request(Api api, std::string_view body, const ServingInfo& info);

// The body as a JSON object under the request-body limits (input::kRequestBody). Throws ApiError 400.
nlohmann::ordered_json parse_body(std::string_view body);

// The pieces parse_request is made of, for the other endpoints (/tokenize) and the tests.
// OpenAI chat messages (+ tools) -> prompt ids. Throws ApiError naming `param`.
std::vector<int32_t> encode_chat_prompt(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                        const ServingInfo& info, bool add_generation_prompt = true);
// Anthropic Messages -> the equivalent OpenAI messages array (system first) and OpenAI function tools.
nlohmann::ordered_json anthropic_to_openai_messages(const nlohmann::ordered_json& body);
nlohmann::ordered_json anthropic_to_openai_tools(const nlohmann::ordered_json& tools);

}  // namespace halo::server
