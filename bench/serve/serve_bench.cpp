// serve_bench: load generator for a running `engine serve` (or any OpenAI-compatible server), reporting what
// sglang's bench_serving reports: request throughput, input and output tok/s, TTFT, TPOT and ITL (mean, median,
// p99) at each concurrency level. Requests are streaming /v1/completions with a prompt of random token ids,
// ignore_eos and max_tokens = --output-len, so every request reads and writes exactly the tokens asked for; the
// counts come from the usage chunk (stream_options.include_usage).
//
// --interference-prompt N: N streams decode while the server is otherwise idle, then one N-token prompt is
// admitted; the per-token gaps of the running streams during its prefill are compared with the idle ones (p99
// ratio; chunked prefill should keep it within 2x).
//
// A table (markdown) on stdout, or with --json one JSON object on stdout and the table on stderr; --json-out FILE
// writes the JSON there as well.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/serve/interference.h"
#include "bench/serve/sse_client.h"
#include "bench/serve/stats.h"
#include "bench/serve/workload.h"

using namespace halo::bench;

namespace {

struct LevelResult {
    int concurrency = 0;
    int completed = 0, failed = 0;
    double duration_s = 0;
    int64_t input_tokens = 0, output_tokens = 0;
    Summary ttft_ms, tpot_ms, itl_ms, e2e_ms;
    std::vector<std::string> errors;  // the first few
    int short_outputs = 0;            // completed with fewer tokens than asked (the server stopped early)
    int64_t chunks = 0;               // chunks carrying tokens (fewer than output_tokens: several tokens per chunk)
    int untimed = 0;                  // completed without any chunk before the final one (no text was streamed)
};

LevelResult run_level(const BenchOptions& o, int concurrency, const std::vector<std::vector<int32_t>>& prompts) {
    std::vector<StreamResult> results(prompts.size());
    std::atomic<size_t> next{0};
    const double t0 = steady_now_s();
    std::vector<std::thread> workers;
    for (int w = 0; w < concurrency; ++w)
        workers.emplace_back([&] {
            std::unique_ptr<httplib::Client> http = make_client(o);
            for (size_t i; (i = next++) < prompts.size();)
                results[i] = stream_request(*http, "/v1/completions", completion_body(o, prompts[i], o.output_len));
        });
    for (std::thread& t : workers) t.join();

    LevelResult lr;
    lr.concurrency = concurrency;
    lr.duration_s = steady_now_s() - t0;
    std::vector<double> ttft, tpot, itl, e2e;
    for (const StreamResult& r : results) {
        if (!r.ok) {
            ++lr.failed;
            if (lr.errors.size() < 3) lr.errors.push_back(r.error);
            continue;
        }
        ++lr.completed;
        // Without a usage chunk, every chunk with text counts as one token (a lower bound).
        const int64_t out = r.completion_tokens > 0 ? r.completion_tokens : int64_t(r.chunk_times_s.size());
        lr.input_tokens += r.prompt_tokens;
        lr.output_tokens += out;
        lr.chunks += int64_t(r.chunk_times_s.size());
        if (out < o.output_len) ++lr.short_outputs;
        e2e.push_back(r.latency_s * 1e3);
        if (r.chunk_times_s.empty()) {  // no token arrived before the end: no TTFT, TPOT or ITL to time
            ++lr.untimed;
            continue;
        }
        ttft.push_back(r.ttft_s * 1e3);
        if (out > 1) tpot.push_back((r.latency_s - r.ttft_s) / double(out - 1) * 1e3);
        for (size_t k = 1; k < r.chunk_times_s.size(); ++k) itl.push_back((r.chunk_times_s[k] - r.chunk_times_s[k - 1]) * 1e3);
    }
    lr.ttft_ms = summarize(ttft);
    lr.tpot_ms = summarize(tpot);
    lr.itl_ms = summarize(itl);
    lr.e2e_ms = summarize(e2e);
    return lr;
}

nlohmann::json level_json(const LevelResult& r) {
    const double d = r.duration_s > 0 ? r.duration_s : 1;
    return {{"concurrency", r.concurrency},
            {"completed", r.completed},
            {"failed", r.failed},
            {"duration_s", r.duration_s},
            {"input_tokens", r.input_tokens},
            {"output_tokens", r.output_tokens},
            {"request_throughput", r.completed / d},
            {"input_tok_s", double(r.input_tokens) / d},
            {"output_tok_s", double(r.output_tokens) / d},
            {"total_tok_s", double(r.input_tokens + r.output_tokens) / d},
            {"ttft_ms", to_json(r.ttft_ms)},
            {"tpot_ms", to_json(r.tpot_ms)},
            {"itl_ms", to_json(r.itl_ms)},
            {"e2e_latency_ms", to_json(r.e2e_ms)},
            {"short_outputs", r.short_outputs},
            {"token_chunks", r.chunks},
            {"untimed", r.untimed},
            {"errors", r.errors}};
}

// "mean | median | p99" in the given format, or "- | - | -" when nothing was timed.
std::string cells(const Summary& s, const char* format) {
    if (s.n == 0) return "- | - | -";
    std::string out;
    for (double v : {s.mean, s.median, s.p99}) {
        char buf[32];
        std::snprintf(buf, sizeof buf, format, v);
        out += (out.empty() ? "" : " | ") + std::string(buf);
    }
    return out;
}

void print_table(std::FILE* f, const BenchOptions& o, const std::vector<LevelResult>& levels) {
    std::fprintf(f, "serve_bench: %s model %s, %d requests per level, input %d tokens, output %d tokens (ignore_eos)\n\n",
                 o.url.c_str(), o.model.c_str(), o.requests, o.input_len, o.output_len);
    std::fprintf(f, "| conc | ok | fail | time s | req/s | in tok/s | out tok/s | TTFT ms mean | median | p99 "
                    "| TPOT ms mean | median | p99 | ITL ms mean | median | p99 | E2E ms median |\n");
    std::fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const LevelResult& r : levels) {
        const double d = r.duration_s > 0 ? r.duration_s : 1;
        std::fprintf(f, "| %d | %d | %d | %.2f | %.3f | %.1f | %.1f | %s | %s | %s | %.1f |\n", r.concurrency, r.completed,
                     r.failed, r.duration_s, r.completed / d, double(r.input_tokens) / d, double(r.output_tokens) / d,
                     cells(r.ttft_ms, "%.1f").c_str(), cells(r.tpot_ms, "%.2f").c_str(), cells(r.itl_ms, "%.2f").c_str(),
                     r.e2e_ms.median);
    }
    for (const LevelResult& r : levels) {
        for (const std::string& e : r.errors) std::fprintf(f, "concurrency %d: failed request: %s\n", r.concurrency, e.c_str());
        if (r.completed > r.untimed && double(r.chunks) < 0.9 * double(r.output_tokens))
            std::fprintf(f, "concurrency %d: %lld chunks for %lld tokens: the server sent several tokens per chunk, "
                            "or none for tokens without text, so ITL covers several tokens and TTFT may come late\n",
                         r.concurrency, (long long)r.chunks, (long long)r.output_tokens);
        if (r.untimed)
            std::fprintf(f, "concurrency %d: %d requests streamed no token before the end (a model without a tokenizer "
                            "gives no text): TTFT, TPOT and ITL leave them out\n",
                         r.concurrency, r.untimed);
        if (r.short_outputs)
            std::fprintf(f, "concurrency %d: %d requests returned fewer than %d tokens (does the server honour ignore_eos?)\n",
                         r.concurrency, r.short_outputs, o.output_len);
    }
}

// The served model's name: the first entry of GET /v1/models.
std::string served_model(const BenchOptions& o) {
    std::unique_ptr<httplib::Client> http = make_client(o);
    const httplib::Result res = http->Get("/v1/models");
    if (!res) throw std::runtime_error("cannot reach " + o.url + "/v1/models: " + httplib::to_string(res.error()) +
                                       "; is `engine serve` running there?");
    if (res->status != 200)
        throw std::runtime_error("GET " + o.url + "/v1/models answered " + std::to_string(res->status) + ": " + res->body.substr(0, 200));
    const nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() || !j["data"][0].contains("id"))
        throw std::runtime_error("GET " + o.url + "/v1/models lists no model: " + res->body.substr(0, 200));
    return j["data"][0]["id"].get<std::string>();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Serving benchmark for a running `engine serve`: throughput, TTFT, TPOT and ITL by concurrency"};
    BenchOptions o;
    std::vector<int> concurrency = {1, 4, 16};
    bool json = false, interference_only = false;
    std::string json_out;
    uint64_t seed = 1;
    int warmup = 2;
    app.add_option("--url", o.url, "The server, e.g. http://127.0.0.1:8080")->required();
    app.add_option("--model", o.model, "Model name to send (default: the first of GET /v1/models)");
    app.add_option("--concurrency", concurrency, "Concurrency levels, e.g. 1,4,16")->delimiter(',')->capture_default_str();
    app.add_option("--requests", o.requests, "Requests per concurrency level")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--input-len", o.input_len, "Prompt tokens per request")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--output-len", o.output_len, "Generated tokens per request (max_tokens, ignore_eos)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--vocab", o.vocab, "Prompt ids are drawn from [0, N): ordinary tokens of any Kimi vocabulary")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--seed", seed, "Seed of the random prompts")->capture_default_str();
    app.add_option("--warmup", warmup, "Requests sent (and not counted) before the first level")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--timeout", o.timeout_s, "Seconds a request may wait for its next bytes")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--interference-prompt", o.interference_prompt,
                   "Also measure the TPOT of running streams while a prompt of this many tokens is admitted (0: off)")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--interference-streams", o.interference_streams, "Streams decoding during the interference test")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--interference-idle-tokens", o.interference_idle_tokens, "Tokens per stream measured while idle")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--interference-stream-tokens", o.interference_stream_tokens,
                   "max_tokens of the decoding streams (they are cancelled once measured; must outlast the prefill)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--interference-only", interference_only, "Skip the concurrency levels");
    app.add_flag("--json", json, "Print one JSON object on stdout (the table goes to stderr)");
    app.add_option("--json-out", json_out, "Also write the JSON object to this file");
    CLI11_PARSE(app, argc, argv);
    for (int c : concurrency)
        if (c < 1) {
            std::fprintf(stderr, "serve_bench: --concurrency levels must be 1 or more (got %d)\n", c);
            return 1;
        }

    try {
        if (o.model.empty()) o.model = served_model(o);
        std::FILE* table = json ? stderr : stdout;
        std::mt19937_64 rng(seed);
        {
            std::unique_ptr<httplib::Client> http = make_client(o);
            for (int i = 0; i < warmup; ++i) {
                const StreamResult r = stream_request(*http, "/v1/completions", completion_body(o, random_prompt(rng, o.input_len, o.vocab), 4));
                if (!r.ok) throw std::runtime_error("the warm-up request failed: " + r.error);
            }
        }
        std::vector<std::vector<int32_t>> prompts;
        for (int i = 0; i < o.requests; ++i) prompts.push_back(random_prompt(rng, o.input_len, o.vocab));

        std::vector<LevelResult> levels;
        if (!interference_only)
            for (int c : concurrency) {
                std::fprintf(stderr, "serve_bench: concurrency %d, %d requests...\n", c, o.requests);
                levels.push_back(run_level(o, c, prompts));
            }
        if (!levels.empty()) print_table(table, o, levels);

        nlohmann::json out = {{"url", o.url},       {"model", o.model},           {"requests", o.requests},
                              {"input_len", o.input_len}, {"output_len", o.output_len}, {"levels", nlohmann::json::array()}};
        for (const LevelResult& r : levels) out["levels"].push_back(level_json(r));
        bool failed = std::any_of(levels.begin(), levels.end(), [](const LevelResult& r) { return r.failed > 0; });
        if (o.interference_prompt > 0) {
            std::fprintf(stderr, "serve_bench: interference, %d streams and one %d-token prompt...\n",
                         o.interference_streams, o.interference_prompt);
            const InterferenceResult ir = run_interference(o, rng);
            print_interference(table, o, ir);
            out["interference"] = interference_json(ir);
            failed = failed || !ir.ok;
        }
        if (json) std::printf("%s\n", out.dump().c_str());
        if (!json_out.empty()) {
            std::FILE* f = std::fopen(json_out.c_str(), "w");
            if (!f || std::fprintf(f, "%s\n", out.dump(2).c_str()) < 0 || std::fclose(f) != 0)
                throw std::runtime_error("cannot write " + json_out);
        }
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "serve_bench: %s\n", e.what());
        return 1;
    }
}
