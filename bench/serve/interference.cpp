#include "bench/serve/interference.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/serve/sse_client.h"

namespace halo::bench {

namespace {

constexpr int kWarmTokens = 4;  // tokens each stream produces before anything is timed

// Token arrival times of one decoding stream (steady-clock seconds), appended by its thread.
struct StreamClock {
    std::mutex mu;
    std::vector<double> times;
    std::atomic<bool> ended{false};  // its request has returned
    size_t count() {
        std::lock_guard<std::mutex> lock(mu);
        return times.size();
    }
};

// Gaps (ms) between consecutive tokens whose later token arrived in (from, to].
std::vector<double> gaps_ending_in(const std::vector<double>& times, double from, double to) {
    std::vector<double> gaps;
    for (size_t k = 1; k < times.size(); ++k)
        if (times[k] > from && times[k] <= to) gaps.push_back((times[k] - times[k - 1]) * 1e3);
    return gaps;
}

}  // namespace

InterferenceResult run_interference(const BenchOptions& o, std::mt19937_64& rng) {
    InterferenceResult r;
    const int n = o.interference_streams;
    std::vector<StreamClock> clocks(static_cast<size_t>(n));
    std::vector<StreamResult> results(static_cast<size_t>(n));
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int s = 0; s < n; ++s) {
        const nlohmann::json body = completion_body(o, random_prompt(rng, o.input_len, o.vocab), o.interference_stream_tokens);
        threads.emplace_back([&, s, body] {
            std::unique_ptr<httplib::Client> http = make_client(o);
            results[size_t(s)] = stream_request(*http, "/v1/completions", body, [&](double) {
                std::lock_guard<std::mutex> lock(clocks[size_t(s)].mu);
                clocks[size_t(s)].times.push_back(steady_now_s());
                return !stop.load();
            });
            clocks[size_t(s)].ended = true;
        });
    }
    auto all_have = [&](size_t tokens) {
        for (int s = 0; s < n; ++s)
            if (clocks[size_t(s)].count() < tokens && !clocks[size_t(s)].ended)
                return false;
        return true;
    };
    auto wait_all = [&](size_t tokens) {
        while (!all_have(tokens)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    };
    auto finish = [&] {
        stop = true;
        for (std::thread& t : threads) t.join();
        for (const StreamResult& sr : results)
            if (!sr.ok) {
                r.error = "a decoding stream failed: " + sr.error;
                return false;
            }
        return true;
    };

    wait_all(kWarmTokens);
    const double idle_from = steady_now_s();
    std::vector<size_t> at_start;
    for (StreamClock& c : clocks) at_start.push_back(c.count());
    for (;;) {  // every stream has produced idle_tokens more (or ended)
        bool done = true;
        for (int s = 0; s < n; ++s)
            if (clocks[size_t(s)].count() < at_start[size_t(s)] + size_t(o.interference_idle_tokens) &&
                !clocks[size_t(s)].ended)
                done = false;
        if (done) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double idle_to = steady_now_s();

    // The long prompt: a streaming request for one token, so its first chunk marks the end of its prefill.
    std::unique_ptr<httplib::Client> http = make_client(o);
    const StreamResult p = stream_request(*http, "/v1/completions", completion_body(o, random_prompt(rng, o.interference_prompt, o.vocab), 1));
    const double prefill_from = p.start_s;
    const double prefill_to = p.start_s + (p.chunk_times_s.empty() ? p.latency_s : p.ttft_s);
    const bool streams_ok = finish();
    if (!p.ok) {
        r.error = "the " + std::to_string(o.interference_prompt) + "-token prompt failed: " + p.error;
        return r;
    }
    if (!streams_ok) return r;

    std::vector<double> idle, prefill;
    for (int s = 0; s < n; ++s) {
        const std::vector<double>& times = clocks[size_t(s)].times;
        if (times.empty() || times.back() < prefill_to) ++r.streams_ended_early;
        for (double g : gaps_ending_in(times, idle_from, idle_to)) idle.push_back(g);
        for (double g : gaps_ending_in(times, prefill_from, prefill_to)) prefill.push_back(g);
    }
    r.idle_ms = summarize(idle);
    r.prefill_ms = summarize(prefill);
    r.prompt_ttft_s = prefill_to - prefill_from;
    r.prompt_tokens = p.prompt_tokens;
    r.p99_ratio = r.idle_ms.p99 > 0 ? r.prefill_ms.p99 / r.idle_ms.p99 : 0;
    r.ok = r.idle_ms.n > 0 && r.prefill_ms.n > 0;
    if (!r.ok) r.error = "no tokens were timed in one of the two phases";
    return r;
}

void print_interference(std::FILE* f, const BenchOptions& o, const InterferenceResult& r) {
    std::fprintf(f, "\ninterference: %d streams decoding (prompt %d tokens), then one %d-token prompt admitted\n",
                 o.interference_streams, o.input_len, o.interference_prompt);
    if (!r.error.empty()) {
        std::fprintf(f, "  failed: %s\n", r.error.c_str());
        return;
    }
    std::fprintf(f, "| phase | tokens timed | TPOT ms mean | median | p99 | max |\n|---|---:|---:|---:|---:|---:|\n");
    std::fprintf(f, "| idle | %zu | %.2f | %.2f | %.2f | %.2f |\n", r.idle_ms.n, r.idle_ms.mean, r.idle_ms.median,
                 r.idle_ms.p99, r.idle_ms.max);
    std::fprintf(f, "| during the prefill | %zu | %.2f | %.2f | %.2f | %.2f |\n", r.prefill_ms.n, r.prefill_ms.mean,
                 r.prefill_ms.median, r.prefill_ms.p99, r.prefill_ms.max);
    std::fprintf(f, "long prompt: %lld tokens, first token after %.2f s (%.1f prompt tok/s while the streams ran)\n",
                 (long long)r.prompt_tokens, r.prompt_ttft_s,
                 r.prompt_ttft_s > 0 ? double(r.prompt_tokens) / r.prompt_ttft_s : 0.0);
    std::fprintf(f, "TPOT p99 during the prefill / idle: %.2fx (target: within 2x) %s\n", r.p99_ratio,
                 r.p99_ratio <= 2.0 ? "ok" : "ABOVE TARGET");
    if (r.streams_ended_early)
        std::fprintf(f, "warning: %d streams ended before the prefill did: raise --interference-stream-tokens\n",
                     r.streams_ended_early);
}

nlohmann::json interference_json(const InterferenceResult& r) {
    return {{"ok", r.ok},
            {"error", r.error},
            {"idle_tpot_ms", to_json(r.idle_ms)},
            {"prefill_tpot_ms", to_json(r.prefill_ms)},
            {"prompt_ttft_s", r.prompt_ttft_s},
            {"prompt_tokens", r.prompt_tokens},
            {"p99_ratio", r.p99_ratio},
            {"within_2x", r.p99_ratio > 0 && r.p99_ratio <= 2.0},
            {"streams_ended_early", r.streams_ended_early}};
}

}  // namespace halo::bench
