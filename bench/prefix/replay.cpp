#include "bench/prefix/replay.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include <sys/resource.h>

namespace halo::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU seconds of this process so far (all threads, user and system).
double process_cpu_s() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double load_average_1m() {
    std::ifstream in("/proc/loadavg");
    double load = 0;
    in >> load;
    return load;
}

// Random ids in [0, limit) from a fixed generator (the same conversation for a given seed on every machine).
void append_random(std::vector<int32_t>& ids, int64_t n, std::mt19937_64& rng, int32_t limit) {
    for (int64_t i = 0; i < n; ++i) ids.push_back(int32_t(rng() % uint64_t(limit)));
}

}  // namespace

Timed run_request(Scheduler& sched, const std::vector<int32_t>& prompt, int32_t max_tokens) {
    GenerationRequest req;
    req.prompt = prompt;
    req.max_tokens = max_tokens;
    Timed t;
    t.load_1m = load_average_1m();
    const double cpu0 = process_cpu_s();
    const Clock::time_point t0 = Clock::now();
    std::shared_ptr<GenerationStream> stream = sched.submit(std::move(req));
    GenerationEvent ev;
    while (stream->next(ev)) {
        if (!ev.ids.empty()) {
            if (t.ids.empty()) {
                t.ttft_s = seconds_since(t0);
                t.ttft_cpu_s = process_cpu_s() - cpu0;
            }
            t.ids.insert(t.ids.end(), ev.ids.begin(), ev.ids.end());
        }
        t.cached_tokens = ev.cached_tokens;
        if (!ev.finished) continue;
        t.total_s = seconds_since(t0);
        if (ev.finish_reason == FinishReason::error)
            t.error = "the engine failed: " + ev.error;
        else if (ev.finish_reason != FinishReason::length || int32_t(t.ids.size()) != max_tokens)
            t.error = "it ended (" + std::string(finish_reason_name(ev.finish_reason)) + ") after " +
                      std::to_string(t.ids.size()) + " of " + std::to_string(max_tokens) + " tokens";
        break;
    }
    // The engine publishes its counters (the prefix cache's included) after the step that ended the request.
    for (int i = 0; i < 10000; ++i) {
        const SchedulerStats st = sched.stats();
        if (st.running == 0 && st.queued == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return t;
}

std::vector<Turn> run_reuse(Scheduler& sched, const ReplaySettings& s, bool progress, const AfterTurn& after) {
    std::mt19937_64 rng(s.seed);
    std::vector<Turn> turns;
    std::vector<int32_t> prompt;
    append_random(prompt, s.first, rng, s.id_limit);
    while (s.turns == 0 || int32_t(turns.size()) < s.turns) {
        if (!turns.empty()) {  // the previous prompt, its whole reply (the agent's history) and the new tokens
            prompt = turns.back().prompt;
            prompt.insert(prompt.end(), turns.back().reuse.ids.begin(), turns.back().reuse.ids.end());
            append_random(prompt, s.fresh, rng, s.id_limit);
        }
        if (int64_t(prompt.size()) + s.reply > s.max_tokens) break;
        Turn t;
        t.number = int32_t(turns.size()) + 1;
        t.prompt = prompt;
        t.reuse = run_request(sched, prompt, s.reply);
        t.prefix = sched.stats().prefix;
        if (progress)
            std::fprintf(stderr,
                         "prefix_replay: turn %d: prompt %lld tokens, %lld cached, TTFT %.3f s (%.2f CPU s) with reuse; "
                         "%d snapshots, %d pages%s%s\n",
                         t.number, (long long)t.prompt_tokens(), (long long)t.reuse.cached_tokens, t.reuse.ttft_s,
                         t.reuse.ttft_cpu_s, t.prefix.snapshots, t.prefix.pages, t.reuse.error.empty() ? "" : "; ",
                         t.reuse.error.c_str());
        const bool failed = !t.reuse.error.empty();
        turns.push_back(std::move(t));
        if (after) after(turns);
        if (failed) break;
    }
    return turns;
}

std::vector<size_t> cold_turns(size_t n_turns, int32_t cold_every) {
    std::vector<size_t> which;
    for (size_t i = 0; i < n_turns; ++i) {
        const int64_t number = int64_t(i) + 1;
        if (i == 0 || i + 1 == n_turns || (cold_every > 0 && number % cold_every == 0)) which.push_back(i);
    }
    return which;
}

void run_cold(Scheduler& sched, std::vector<Turn>& turns, const std::vector<size_t>& which, int32_t reply,
              bool progress, const AfterTurn& after) {
    for (size_t i : which) {
        Turn& t = turns[i];
        t.cold = run_request(sched, t.prompt, reply);
        t.cold_measured = true;
        if (progress)
            std::fprintf(stderr, "prefix_replay: turn %d cold: prompt %lld tokens, TTFT %.3f s (%.2f CPU s); %s%s%s\n",
                         t.number, (long long)t.prompt_tokens(), t.cold.ttft_s, t.cold.ttft_cpu_s,
                         t.cold.ids == t.reuse.ids ? "MATCH" : "MISMATCH", t.cold.error.empty() ? "" : "; ",
                         t.cold.error.c_str());
        if (after) after(turns);
    }
}

}  // namespace halo::bench
