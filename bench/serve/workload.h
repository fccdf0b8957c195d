// What serve_bench sends: its options, random token-id prompts, and the request body of one streaming completion.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace halo::bench {

struct BenchOptions {
    std::string url;             // http://HOST:PORT
    std::string model;           // sent as "model"; empty: the first of GET /v1/models
    int requests = 32;           // per concurrency level
    int input_len = 256;         // prompt tokens
    int output_len = 64;         // max_tokens, with ignore_eos
    int vocab = 1000;            // prompt ids in [0, vocab)
    int timeout_s = 600;         // read/write timeout of one request
    int interference_prompt = 0;          // tokens of the interfering prompt; 0 = no interference test
    int interference_streams = 8;         // streams decoding meanwhile
    int interference_idle_tokens = 32;    // tokens per stream timed before the prompt is sent
    int interference_stream_tokens = 2048;  // their max_tokens (cancelled once measured)
};

std::vector<int32_t> random_prompt(std::mt19937_64& rng, int len, int vocab);

// A streaming /v1/completions body: greedy, ignore_eos, usage in the last chunk.
nlohmann::json completion_body(const BenchOptions& o, const std::vector<int32_t>& prompt, int max_tokens);

// A client with the options' timeouts; one per thread.
std::unique_ptr<httplib::Client> make_client(const BenchOptions& o);

}  // namespace halo::bench
