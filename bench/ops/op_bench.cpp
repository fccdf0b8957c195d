// bench_ops: every op with Kimi-Linear-48B-A3B shapes on every plugin that loads, decode (1 row) and prefill
// (--rows) forms, timed per call (begin_step, op, end_step, synchronize; median of --reps after a warm-up) with
// the achieved GB/s (minimum bytes the call must move / time) and GFLOP/s. Prints a table and one JSON line.
// Ops that do not fit the device are reported as skipped with the reason.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/ops/op_cases.h"
#include "core/plugin_loader.h"

using namespace halo;

namespace {

struct Result {
    std::string plugin, op, note;
    int64_t rows = 0;
    double median_ms = 0, min_ms = 0, max_ms = 0, gbs = 0, gflops = 0;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Per-op benchmark with Kimi-Linear-48B-A3B shapes on every plugin that loads"};
    std::vector<std::string> plugins, ops_filter;
    int reps = 5;
    int64_t rows = 512, context = 4096;
    int32_t threads = 0;
    std::string cache = "bf16", json_out;
    bench::Shapes shapes;
    app.add_option("--plugins", plugins, "Plugins to run (default: every usable one)")->delimiter(',');
    app.add_option("--ops", ops_filter, "Ops to run (embedding, rms_norm, add, lm_head, mlp, kda, mla, moe)")->delimiter(',');
    app.add_option("--reps", reps, "Timed calls per case (after one warm-up)")->capture_default_str();
    app.add_option("--rows", rows, "Rows of the prefill form (lm_head uses 64, the engine's logit batch)")->capture_default_str();
    app.add_option("--context", context, "MLA: tokens already in the cache")->capture_default_str();
    app.add_option("--cache-dtype", cache, "MLA cache dtype: f32, f16 or bf16")->capture_default_str();
    app.add_option("--experts", shapes.experts, "MoE experts allocated (256 in the real model)")->capture_default_str();
    app.add_option("--threads", threads, "CPU plugin threads (0 = all)")->capture_default_str();
    app.add_option("--json-out", json_out, "Also write the results as JSON to this file");
    CLI11_PARSE(app, argc, argv);
    if (ops_filter.empty()) ops_filter = bench::op_names();
    if (plugins.empty())
        for (const PluginReport& r : discover_plugins())
            if (r.usable) plugins.push_back(r.name);

    std::vector<Result> results;
    for (const std::string& name : plugins) {
        std::unique_ptr<LoadedBackend> lb;
        try {
            ops::BackendOptions bo;
            bo.threads = threads;
            lb = load_backend(name, bo);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_ops: %s: %s\n", name.c_str(), e.what());
            continue;
        }
        ops::Backend& b = lb->backend();
        std::fprintf(stderr, "bench_ops: %s on %s\n", name.c_str(), b.device().name.c_str());
        for (const std::string& op : ops_filter)
            for (int64_t r : {int64_t(1), op == "lm_head" ? int64_t(64) : rows}) {
                if (op == "embedding" && r > 1 && rows == 1) continue;
                bench::CaseOptions co;
                co.rows = r;
                co.context = context;
                co.cache_dtype = cache == "f32" ? ops::DType::f32 : cache == "f16" ? ops::DType::f16 : ops::DType::bf16;
                Result res{name, op, "", r};
                bench::PreparedCase pc;
                try {
                    pc = bench::prepare(b, op, shapes, co);
                    b.synchronize();
                    auto call = [&] {
                        b.begin_step();
                        pc.run();
                        b.end_step();
                        b.synchronize();
                    };
                    call();  // warm-up: pipelines, caches
                    std::vector<double> t;
                    for (int i = 0; i < reps; ++i) {
                        const double t0 = now();
                        call();
                        t.push_back(now() - t0);
                    }
                    std::sort(t.begin(), t.end());
                    const double med = t[t.size() / 2];
                    res.median_ms = 1e3 * med;
                    res.min_ms = 1e3 * t.front();
                    res.max_ms = 1e3 * t.back();
                    res.gbs = double(pc.bytes) / med / 1e9;
                    res.gflops = pc.flops / med / 1e9;
                } catch (const std::exception& e) {
                    res.note = std::string("skipped: ") + e.what();
                }
                for (ops::Buffer* buf : pc.buffers) b.release(buf);
                std::fprintf(stderr, "bench_ops: %s %s rows %lld: %s\n", name.c_str(), op.c_str(), (long long)r,
                             res.note.empty() ? (std::to_string(res.median_ms) + " ms").c_str() : res.note.c_str());
                results.push_back(res);
            }
    }

    std::printf("| plugin | op | rows | ms/call (median) | min | max | GB/s | GFLOP/s |\n|---|---|---|---|---|---|---|---|\n");
    nlohmann::json j = nlohmann::json::array();
    for (const Result& r : results) {
        if (!r.note.empty())
            std::printf("| %s | %s | %lld | %s | | | | |\n", r.plugin.c_str(), r.op.c_str(), (long long)r.rows, r.note.c_str());
        else
            std::printf("| %s | %s | %lld | %.3f | %.3f | %.3f | %.2f | %.2f |\n", r.plugin.c_str(), r.op.c_str(),
                        (long long)r.rows, r.median_ms, r.min_ms, r.max_ms, r.gbs, r.gflops);
        j.push_back({{"plugin", r.plugin}, {"op", r.op}, {"rows", r.rows}, {"median_ms", r.median_ms}, {"min_ms", r.min_ms},
                     {"max_ms", r.max_ms}, {"gbs", r.gbs}, {"gflops", r.gflops}, {"note", r.note}});
    }
    // MoE prefill against the dense product: the routed experts' rows (about 16 each at 512 rows and 8 of 256
    // experts) stream every expert's weights once, where the dense MLP reuses its weights for every row.
    for (const Result& m : results)
        for (const Result& d : results)
            if (m.op == "moe" && d.op == "mlp" && m.plugin == d.plugin && m.rows > 1 && m.rows == d.rows &&
                m.note.empty() && d.note.empty() && d.gflops > 0)
                std::printf("%s: MoE prefill at %lld rows runs at %.2f of the dense MLP's GFLOP/s\n", m.plugin.c_str(),
                            (long long)m.rows, m.gflops / d.gflops);
    std::printf("%s\n", j.dump().c_str());
    if (!json_out.empty()) {
        FILE* f = std::fopen(json_out.c_str(), "w");
        if (!f) {
            std::fprintf(stderr, "bench_ops: cannot write %s\n", json_out.c_str());
            return 1;
        }
        std::fprintf(f, "%s\n", j.dump(2).c_str());
        std::fclose(f);
    }
    return 0;
}
