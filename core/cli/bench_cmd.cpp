// engine bench: prefill and decode speed on a model, beside the machine's measured memory read bandwidth.
// Prints a table a person can paste and one JSON line a script can read.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/membw.h"
#include "core/sampler.h"

namespace halo::cli {

namespace {

struct BenchOptions {
    RunOptions run;
    std::vector<int32_t> prompt_lens = {512};
    int32_t decode_tokens = 32;
    int32_t reps = 3;
    double bandwidth_gb = 2.0;
    std::string json_out;
};

struct Stats {
    double median = 0, min = 0, max = 0;
};

Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

struct DepthResult {
    int32_t depth = 0;
    Stats prefill, decode;  // tok/s
};

// Prefill `depth` random tokens, then decode; repeated o.reps times on fresh sequences.
DepthResult run_depth(Model& m, const BenchOptions& o, int32_t depth) {
    const int64_t vocab = m.config().vocab_size;
    std::vector<int32_t> prompt(static_cast<size_t>(depth));
    uint64_t s = 12345;
    for (auto& id : prompt) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        id = int32_t((s >> 33) % uint64_t(vocab));
    }
    std::vector<double> prefill_tps, decode_tps;
    for (int rep = 0; rep < o.reps; ++rep) {
        Sequence seq;
        m.begin_sequence(seq);
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<float> logits = m.prefill(seq, prompt, false);
        const auto t1 = std::chrono::steady_clock::now();
        prefill_tps.push_back(double(depth) / std::chrono::duration<double>(t1 - t0).count());
        int32_t id = argmax(logits.data(), vocab);
        const auto t2 = std::chrono::steady_clock::now();
        for (int i = 0; i < o.decode_tokens; ++i) {
            logits.clear();
            StepItem item{&seq, std::span<const int32_t>(&id, 1), LogitRows::last};
            m.step(std::span<const StepItem>(&item, 1), logits);
            id = argmax(logits.data(), vocab);
        }
        const auto t3 = std::chrono::steady_clock::now();
        decode_tps.push_back(double(o.decode_tokens) / std::chrono::duration<double>(t3 - t2).count());
        m.end_sequence(seq);
        if (!o.run.quiet)
            std::fprintf(stderr, "bench: depth %d, rep %d: prefill %.1f tok/s, decode %.2f tok/s\n", depth, rep + 1,
                         prefill_tps.back(), decode_tps.back());
    }
    return {depth, stats(prefill_tps), stats(decode_tps)};
}

int run_bench(BenchOptions& o) {
    if (o.prompt_lens.empty()) throw std::runtime_error("--prompt-len needs at least one length");
    for (int32_t n : o.prompt_lens)
        if (n < 1) throw std::runtime_error("--prompt-len values must be at least 1, not " + std::to_string(n));
    if (!(o.bandwidth_gb >= 0.1 && o.bandwidth_gb <= 1024))
        throw std::runtime_error("--bandwidth-gb must be between 0.1 and 1024 (1 or more measures DRAM, not caches)");
    if (o.reps < 1 || o.decode_tokens < 1) throw std::runtime_error("--reps and --decode-tokens must be at least 1");
    if (!o.json_out.empty()) check_output_path(o.json_out, "--json-out");
    const int32_t deepest = *std::max_element(o.prompt_lens.begin(), o.prompt_lens.end());
    o.run.context = std::max<int64_t>(o.run.context, int64_t(deepest) + o.decode_tokens + 1);
    // As many threads as the CPU plugin will run (it caps --threads at the hardware threads).
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = o.run.threads > 0 ? std::min(o.run.threads, hardware) : hardware;
    if (!o.run.quiet)
        std::fprintf(stderr, "bench: measuring memory read bandwidth (%.1f GB buffer, %d threads)...\n", o.bandwidth_gb, threads);
    BandwidthResult bw = measure_read_bandwidth(uint64_t(o.bandwidth_gb * 1e9), threads, 5);
    if (bw.best_gbs <= 0)
        throw std::runtime_error("could not allocate the " + std::to_string(o.bandwidth_gb) +
                                 " GB buffer for the memory bandwidth measurement; lower --bandwidth-gb");

    Engine e = open_engine(o.run);
    Model& m = *e.model;
    std::vector<DepthResult> results;
    for (int32_t depth : o.prompt_lens) results.push_back(run_depth(m, o, depth));

    // Measure the bandwidth again after the runs and keep the better figures: the ratios below are then
    // conservative on a shared machine.
    const BandwidthResult bw2 = measure_read_bandwidth(uint64_t(o.bandwidth_gb * 1e9), threads, 5);
    bw.best_gbs = std::max(bw.best_gbs, bw2.best_gbs);
    bw.median_gbs = std::max(bw.median_gbs, bw2.median_gbs);
    const uint64_t bytes_per_token = m.decode_weight_bytes();
    const double gb_tok = double(bytes_per_token) / 1e9;

    // Which weights are quantized: the checkpoint's own (compressed-tensors) and those quantized at load.
    std::string formats = m.config().quant.present ? "compressed-tensors checkpoint" : "float checkpoint";
    if (m.options().quantize.any()) formats += ", quantized at load: " + m.options().quantize.describe();
    std::printf("device: %s; weights: %s; weights read per decode token: %.3f GB (scales included); memory read "
                "bandwidth: %.1f GB/s best, %.1f median (%d threads, %.1f GB buffer)\n\n",
                m.backend().device().name.c_str(), formats.c_str(), gb_tok, bw.best_gbs, bw.median_gbs, bw.threads,
                double(bw.bytes) / 1e9);
    std::printf("| context | prefill tok/s (median, min-max) | decode tok/s (median, min-max) | decode weight GB/s (median, best) "
                "| of bandwidth (median, best) | with state+cache: GB/token, of bandwidth (median) |\n"
                "|---|---|---|---|---|---|\n");
    nlohmann::json depths = nlohmann::json::array();
    for (const DepthResult& r : results) {
        const double gbs = r.decode.median * gb_tok;
        const double best = r.decode.max * gb_tok;
        const double state_gb = double(m.decode_state_bytes(r.depth + o.decode_tokens / 2)) / 1e9;
        const double total_gbs = r.decode.median * (gb_tok + state_gb);
        std::printf("| %d | %.1f (%.1f-%.1f) | %.2f (%.2f-%.2f) | %.1f, %.1f | %.0f%%, %.0f%% | %.3f, %.0f%% |\n", r.depth,
                    r.prefill.median, r.prefill.min, r.prefill.max, r.decode.median, r.decode.min, r.decode.max, gbs, best,
                    100 * gbs / bw.best_gbs, 100 * best / bw.best_gbs, gb_tok + state_gb, 100 * total_gbs / bw.best_gbs);
        depths.push_back({{"context", r.depth},
                          {"prefill_tok_s", {{"median", r.prefill.median}, {"min", r.prefill.min}, {"max", r.prefill.max}}},
                          {"decode_tok_s", {{"median", r.decode.median}, {"min", r.decode.min}, {"max", r.decode.max}}},
                          {"decode_gbs", gbs},
                          {"decode_fraction_of_bandwidth", gbs / bw.best_gbs},
                          {"decode_fraction_of_bandwidth_best_rep", best / bw.best_gbs},
                          {"decode_state_cache_bytes_per_token", uint64_t(state_gb * 1e9)},
                          {"decode_fraction_of_bandwidth_with_state", total_gbs / bw.best_gbs}});
    }
    nlohmann::json j = {{"device", m.backend().device().name},
                        {"weights", formats},
                        {"model_weight_bytes", m.plan().bytes[0]},
                        {"decode_weight_bytes_per_token", bytes_per_token},
                        {"bandwidth_gbs_best", bw.best_gbs},
                        {"bandwidth_gbs_median", bw.median_gbs},
                        {"decode_tokens", o.decode_tokens},
                        {"reps", o.reps},
                        {"depths", depths}};
    std::printf("\n%s\n", j.dump().c_str());
    if (!o.json_out.empty()) {
        FILE* f = std::fopen(o.json_out.c_str(), "w");
        if (!f) throw std::runtime_error("cannot write --json-out " + o.json_out + ": " + std::strerror(errno));
        std::fprintf(f, "%s\n", j.dump(2).c_str());
        if (std::fclose(f) != 0) throw std::runtime_error("cannot write --json-out " + o.json_out + ": " + std::strerror(errno));
    }
    return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* sub = app.add_subcommand("bench", "Measure prefill and decode speed against the machine's memory bandwidth");
    add_run_options(*sub, o->run);
    sub->add_option("--prompt-len", o->prompt_lens, "Prefill lengths (context depths), e.g. 512,4096")
        ->delimiter(',')
        ->check(CLI::Range(1, 1 << 24))
        ->capture_default_str();
    sub->add_option("--decode-tokens", o->decode_tokens, "Tokens decoded per repetition")
        ->check(CLI::Range(1, 1 << 24))
        ->capture_default_str();
    sub->add_option("--reps", o->reps, "Repetitions")->check(CLI::Range(1, 1000))->capture_default_str();
    sub->add_option("--bandwidth-gb", o->bandwidth_gb, "Buffer size of the bandwidth measurement (GB, at least 1)")->capture_default_str();
    sub->add_option("--json-out", o->json_out, "Also write the JSON result to this file");
    return {sub, [o] { return run_bench(*o); }};
}

}  // namespace halo::cli
