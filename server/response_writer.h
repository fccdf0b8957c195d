// Output of a generation request in each API's response format: a whole JSON body, or the SSE events of a stream.
// The HTTP layer feeds it the scheduler's text deltas and the final event; tool calls are split from the text here
// when the request declared tools. One per request; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/scheduler.h"
#include "server/api_error.h"
#include "server/request.h"

namespace halo::server {

class ResponseWriter {
public:
    virtual ~ResponseWriter() = default;
    // Streaming: the SSE text to send first, for new generated text, and after the final event (which must have
    // finished with stop or length; cancelled and error go to stream_error).
    virtual std::string stream_start() = 0;
    virtual std::string stream_text(std::string_view text) = 0;
    virtual std::string stream_end(const GenerationEvent& last) = 0;
    virtual std::string stream_error(const ApiError& e) = 0;
    // Not streaming: the response body for the whole generated text.
    virtual std::string body(std::string_view text, const GenerationEvent& last) = 0;
};

// `prompt_tokens`: the request's prompt length (Anthropic reports it at the start of a stream).
std::unique_ptr<ResponseWriter> make_openai_writer(const ApiRequest& request, const std::string& model_name);
std::unique_ptr<ResponseWriter> make_anthropic_writer(const ApiRequest& request, const std::string& model_name,
                                                      int64_t prompt_tokens);
std::unique_ptr<ResponseWriter> make_writer(const ApiRequest& request, const std::string& model_name);

// Helpers shared by the writers.
std::string new_response_id(std::string_view prefix);  // prefix + 24 random hex digits
int64_t unix_time_now();
std::string dump_json(const nlohmann::ordered_json& j);  // compact; ill-formed UTF-8 replaced, never throws on it
std::string sse_data(const nlohmann::ordered_json& j);   // "data: {json}\n\n"

}  // namespace halo::server
