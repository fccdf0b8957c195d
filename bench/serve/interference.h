// The interference test: how much one long prompt slows the streams already decoding.
//
// --interference-streams streams decode (prompt --input-len, ignore_eos); once each has produced a few tokens,
// --interference-idle-tokens more per stream are timed ("idle"); then one --interference-prompt-token prompt is
// sent (max_tokens 1) and the streams' tokens that arrive until its first token ("prefill") are timed. A token's
// time is the gap since the previous token of its stream. With chunked prefill each engine step carries the
// streams' decode tokens plus one chunk of the prompt, so the p99 gap should stay within 2x of idle.
#pragma once

#include <cstdio>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/serve/stats.h"
#include "bench/serve/workload.h"

namespace halo::bench {

struct InterferenceResult {
    bool ok = false;
    std::string error;
    Summary idle_ms, prefill_ms;  // per-token gaps of the running streams
    double prompt_ttft_s = 0;     // the long prompt: send -> first token (its prefill, queueing included)
    int64_t prompt_tokens = 0;    // as the server counted them
    double p99_ratio = 0;         // prefill p99 / idle p99
    int streams_ended_early = 0;  // streams that finished before the prefill did (their max_tokens too small)
};

InterferenceResult run_interference(const BenchOptions& o, std::mt19937_64& rng);
void print_interference(std::FILE* f, const BenchOptions& o, const InterferenceResult& r);
nlohmann::json interference_json(const InterferenceResult& r);

}  // namespace halo::bench
