// One streaming request to an OpenAI-compatible server, timed chunk by chunk (the client side of serve_bench).
//
//   httplib::Client http("http://127.0.0.1:8080");
//   StreamResult r = stream_request(http, "/v1/completions", body);   // body has "stream": true
//   r.ttft_s, r.token_times_s, r.completion_tokens ...
//
// Not thread-safe per client: give each worker thread its own httplib::Client.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace halo::bench {

struct StreamResult {
    bool ok = false;
    std::string error;                // why not ok: transport error, HTTP status and body, or a malformed stream
    double start_s = 0;               // steady-clock seconds when the request was sent
    double ttft_s = 0;                // start -> first chunk carrying a token
    double latency_s = 0;             // start -> end of the stream
    std::vector<double> chunk_times_s;  // arrival of every chunk carrying tokens, seconds since start (ITL = differences)
    int64_t prompt_tokens = 0;        // from the usage chunk (stream_options.include_usage)
    int64_t completion_tokens = 0;
    std::string finish_reason;
};

// Called at the arrival of each chunk carrying tokens (seconds since start); return false to cancel the request (the
// connection is closed and the result is ok with what arrived so far).
using ChunkCallback = std::function<bool(double t_s)>;

double steady_now_s();

// POSTs `body` to `path` and reads the server-sent events to "data: [DONE]". A chunk carries tokens when it has
// text (choices[0].text, choices[0].delta.content), tool-call deltas, or is a completions chunk before the final one
// (a server may stream tokens whose text is still empty). A server that sends several tokens in one chunk shows as
// fewer chunks than completion_tokens.
StreamResult stream_request(httplib::Client& http, const std::string& path, const nlohmann::json& body,
                            const ChunkCallback& on_chunk = {});

}  // namespace halo::bench
