// bench_weight_stream: the decode kernels whose speed is the speed of reading their weights from DRAM, run through
// the plugin interface as the engine runs them, on Kimi-Linear-48B-A3B shapes (configs/kimi-linear-48b-a3b-instruct.json):
//   gemv     linear, BF16 [4096, 2304], over 64 distinct matrices (1.2 GB: more than any cache, so each is streamed)
//   lm_head  linear, BF16 [163840, 2304] (755 MB)
//   moe      the MoE op at n = 1..8 tokens: 256 experts gate/up [1024, 2304] and down [2304, 1024], top 8 per token,
//            a shared expert of 1024; it reads the router, the shared expert and each distinct routed expert once
//   kda      the KDA mixer decoding one token, over --kda-layers distinct layers (weights and states of their own):
//            32 heads of 128, each with a 64 KB F32 state read and written back (2 MB a layer); once with the
//            48B-A3B hidden width of 2304 (the projections are most of the bytes) and once with a hidden width of
//            128 (the state is: this row is the recurrence against its state-traffic limit). Bytes: the weights,
//            the state twice and the conv state twice (the activations are counted but small)
// Each call is timed cold: before every call a plain streaming read (core/membw's ReadStream) passes over a buffer
// larger than the caches, allocated once, with the same number of threads, which also gives the bandwidth the call is
// compared with. So the runs alternate kernel, stream, kernel, stream...; each kernel call's GB/s is divided by the
// stream pass just before it, and the table gives medians: time, GB/s, stream GB/s and that ratio (1.0 = the kernel
// reads as fast as a plain loop can). --weight-offset starts every weight that many bytes past a 64-byte boundary, as
// a checkpoint mapped in place gives them (safetensors packs tensors at 8-byte offsets). Prints the CPU model, a table
// and one JSON line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/membw.h"
#include "bench/ops/op_cases.h"
#include "core/plugin_loader.h"
#include "ops/dtype.h"

using namespace halo;
using namespace halo::ops;

namespace {

// The processor's name as /proc/cpuinfo gives it (lscpu's "Model name"), or what is known without it.
std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0 || line.rfind("Model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    return "unknown processor";
}

int32_t placement_for(Backend& b, MemoryUse use) {
    const DeviceInfo& d = b.device();
    for (size_t i = 0; i < d.placements.size(); ++i)
        if (d.placements[i].name == d.default_placement[int(use)]) return int32_t(i);
    return 0;
}

// Buffers of one case, released when it ends.
class Buffers {
public:
    Buffers(Backend& b, uint64_t weight_offset) : b_(b), weight_offset_(weight_offset) {}
    ~Buffers() {
        for (Buffer* buf : owned_) b_.release(buf);
    }
    Buffers(const Buffers&) = delete;
    Buffers& operator=(const Buffers&) = delete;

    // A tensor in a buffer of its own, filled from `pattern` (bytes of valid values of its dtype), repeated.
    // Weights start weight_offset bytes into their buffer.
    Tensor make(MemoryUse use, DType dt, std::initializer_list<int64_t> dims, const std::vector<uint8_t>& pattern) {
        const uint64_t offset = use == MemoryUse::weights ? weight_offset_ : 0;
        Tensor t = make_tensor(nullptr, offset, dt, dims);
        t.buffer = b_.allocate(use, placement_for(b_, use), std::max<uint64_t>(offset + t.bytes(), 256));
        owned_.push_back(t.buffer);
        for (uint64_t at = 0; at < t.bytes(); at += pattern.size())
            b_.write(t.buffer, offset + at, pattern.data(), std::min<uint64_t>(pattern.size(), t.bytes() - at));
        return t;
    }

private:
    Backend& b_;
    uint64_t weight_offset_;
    std::vector<Buffer*> owned_;
};

// `n` values of a normal distribution of this scale, stored as `dt`.
std::vector<uint8_t> pattern(DType dt, size_t n, float scale, uint32_t seed) {
    std::vector<uint8_t> p(n * dtype_size(dt));
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    for (size_t i = 0; i < n; ++i) store_from_f32(p.data(), dt, i, d(rng));
    return p;
}

// A prepared case: run() records its ops (one call of the case); bytes are the weights they read.
struct Case {
    std::string name;
    uint64_t bytes = 0;
    int64_t ops = 1;  // op calls in one call of the case
    std::function<void()> run;
};

struct Result {
    std::string name;
    int32_t threads = 0;
    uint64_t bytes = 0;
    int64_t ops = 1;
    double ms = 0, gbs = 0, stream_gbs = 0, ratio = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The case timed cold, alternating with the streaming read: one untimed call first (the plugin's temporaries),
// then `reps` times a stream pass and a call.
Result measure(Backend& b, const Case& c, int32_t threads, ReadStream& stream, int reps) {
    auto call = [&] {
        b.begin_step();
        c.run();
        b.end_step();
        b.synchronize();
    };
    call();
    std::vector<double> ms, gbs, stream_gbs, ratio;
    for (int r = 0; r < reps; ++r) {
        const double s = stream.pass();
        const auto t0 = std::chrono::steady_clock::now();
        call();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ms.push_back(1e3 * sec);
        gbs.push_back(double(c.bytes) / sec / 1e9);
        stream_gbs.push_back(s);
        ratio.push_back(gbs.back() / s);
    }
    return {c.name, threads, c.bytes, c.ops, median(ms), median(gbs), median(stream_gbs), median(ratio)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Cold weight-streaming decode kernels (GEMV, lm_head, MoE) through a plugin, against a streaming read "
                 "loop run between the calls"};
    std::string plugin = "cpu", json_out;
    std::vector<int32_t> threads = {1, 2}, moe_tokens = {1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<std::string> cases = {"gemv", "lm_head", "moe"};
    int reps = 5;
    int64_t matrices = 64, experts = 256, kda_layers = 8;
    std::vector<int64_t> kda_hidden = {2304, 128};
    double stream_gb = 1.0;
    uint64_t weight_offset = 0;
    app.add_option("--plugin", plugin, "Plugin to run")->capture_default_str();
    app.add_option("--threads", threads, "Thread counts, each a run of every case (the plugin's and the stream's)")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--cases", cases, "Cases: gemv, lm_head, moe, kda")->delimiter(',')->capture_default_str();
    app.add_option("--moe-tokens", moe_tokens, "Tokens (rows) of the MoE cases")->delimiter(',')->capture_default_str();
    app.add_option("--reps", reps, "Timed calls per case, each after a stream pass")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--matrices", matrices, "Distinct [4096, 2304] matrices of the gemv case")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--experts", experts, "Experts allocated for the moe case (at least 8)")->check(CLI::Range(8, 256))->capture_default_str();
    app.add_option("--kda-layers", kda_layers, "Distinct layers of the kda case")->check(CLI::Range(1, 256))->capture_default_str();
    app.add_option("--kda-hidden", kda_hidden, "Hidden widths of the kda case, a row each")
        ->delimiter(',')
        ->check(CLI::Range(16, 16384))
        ->capture_default_str();
    app.add_option("--stream-gb", stream_gb, "Buffer of each stream pass, in GB (larger than the caches)")
        ->check(CLI::Range(0.01, 1024.0))
        ->capture_default_str();
    app.add_option("--weight-offset", weight_offset,
                   "Bytes past a 64-byte boundary at which every weight starts (24 is what a safetensors file mapped in "
                   "place gave the bench model)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    app.add_option("--json-out", json_out, "Also write the results as JSON to this file");
    CLI11_PARSE(app, argc, argv);
    for (const std::string& c : cases)
        if (c != "gemv" && c != "lm_head" && c != "moe" && c != "kda") {
            std::fprintf(stderr, "bench_weight_stream: unknown case '%s' (give gemv, lm_head, moe, kda)\n", c.c_str());
            return 2;
        }
    for (int32_t n : moe_tokens)
        if (n < 1 || n > 64) {
            std::fprintf(stderr, "bench_weight_stream: --moe-tokens %d is outside 1..64\n", n);
            return 2;
        }
    const auto wanted = [&](const char* c) { return std::find(cases.begin(), cases.end(), c) != cases.end(); };
    const uint64_t stream_bytes = uint64_t(stream_gb * 1e9);
    const int64_t D = 2304, N = 4096, V = 163840, I = 1024, top_k = 8;

    const std::string cpu = cpu_model();
    std::printf("CPU: %s (%u hardware threads)\n", cpu.c_str(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<Result> results;
    std::vector<std::string> devices;  // as the plugin names itself with each thread count
    for (int32_t t : threads) {
        BackendOptions bo;
        bo.threads = t;
        std::unique_ptr<LoadedBackend> lb;
        try {
            lb = load_backend(plugin, bo);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_weight_stream: %s\n", e.what());
            return 1;
        }
        Backend& b = lb->backend();
        devices.push_back(b.device().name);
        ReadStream stream(stream_bytes, t);
        if (!stream.ok()) {
            std::fprintf(stderr, "bench_weight_stream: cannot allocate a %.2f GB stream buffer; lower --stream-gb\n",
                         double(stream_bytes) / 1e9);
            return 1;
        }
        std::fprintf(stderr, "bench_weight_stream: %s on %s\n", plugin.c_str(), devices.back().c_str());
        const float ws = 1.0f / std::sqrt(float(D));
        const std::vector<uint8_t> weights = pattern(DType::bf16, 1 << 19, ws, 1), act = pattern(DType::f32, 1 << 16, 1.0f, 2);
        try {
            if (wanted("gemv")) {
                Buffers bufs(b, weight_offset);
                std::vector<Tensor> w;
                for (int64_t i = 0; i < matrices; ++i) w.push_back(bufs.make(MemoryUse::weights, DType::bf16, {N, D}, weights));
                const Tensor x = bufs.make(MemoryUse::scratch, DType::f32, {1, D}, act);
                const Tensor y = bufs.make(MemoryUse::scratch, DType::f32, {1, N}, act);
                Case c{"gemv bf16 [4096,2304] x " + std::to_string(matrices), uint64_t(matrices) * w[0].bytes(), matrices,
                       [&] {
                           for (const Tensor& m : w) b.linear({x, m, y});
                       }};
                results.push_back(measure(b, c, t, stream, reps));
            }
            if (wanted("lm_head")) {
                Buffers bufs(b, weight_offset);
                const Tensor w = bufs.make(MemoryUse::weights, DType::bf16, {V, D}, weights);
                const Tensor x = bufs.make(MemoryUse::scratch, DType::f32, {1, D}, act);
                const Tensor y = bufs.make(MemoryUse::scratch, DType::f32, {1, V}, act);
                results.push_back(measure(b, {"lm_head bf16 [163840,2304]", w.bytes(), 1, [&] { b.linear({x, w, y}); }}, t,
                                          stream, reps));
            }
            if (wanted("moe")) {
                Buffers bufs(b, weight_offset);
                std::vector<Tensor> table;  // w1 (gate) of every expert, then w3 (up), then w2 (down)
                for (int64_t e = 0; e < experts; ++e) table.push_back(bufs.make(MemoryUse::weights, DType::bf16, {I, D}, weights));
                for (int64_t e = 0; e < experts; ++e) table.push_back(bufs.make(MemoryUse::weights, DType::bf16, {I, D}, weights));
                const std::vector<uint8_t> down = pattern(DType::bf16, 1 << 19, 1.0f / std::sqrt(float(I)), 3);
                for (int64_t e = 0; e < experts; ++e) table.push_back(bufs.make(MemoryUse::weights, DType::bf16, {D, I}, down));
                MoeParams p;
                p.router = bufs.make(MemoryUse::weights, DType::bf16, {experts, D}, weights);
                p.router_bias = bufs.make(MemoryUse::weights, DType::f32, {experts}, pattern(DType::f32, 4096, 0.01f, 4));
                p.shared_gate = bufs.make(MemoryUse::weights, DType::bf16, {I, D}, weights);
                p.shared_up = bufs.make(MemoryUse::weights, DType::bf16, {I, D}, weights);
                p.shared_down = bufs.make(MemoryUse::weights, DType::bf16, {D, I}, down);
                p.w1 = table.data();
                p.w3 = table.data() + experts;
                p.w2 = table.data() + 2 * experts;
                p.n_experts = int32_t(experts);
                p.top_k = int32_t(top_k);
                p.routed_scale = 2.446f;
                const uint64_t expert_bytes = table[0].bytes() * 3;  // gate, up, down; the shared expert's too
                const uint64_t fixed = p.router.bytes() + p.router_bias.bytes() + expert_bytes;
                for (int32_t n : moe_tokens) {
                    p.x = bufs.make(MemoryUse::scratch, DType::f32, {n, D}, act);
                    p.out = bufs.make(MemoryUse::scratch, DType::f32, {n, D}, act);
                    p.topk_ids = bufs.make(MemoryUse::scratch, DType::i32, {n, top_k}, std::vector<uint8_t>(4, 0));
                    b.begin_step();
                    b.moe(p);
                    b.end_step();
                    std::vector<int32_t> ids(size_t(n * top_k));
                    b.read(p.topk_ids.buffer, p.topk_ids.offset, ids.data(), ids.size() * 4);  // waits for the op
                    const size_t distinct = std::set<int32_t>(ids.begin(), ids.end()).size();
                    Case c{"moe bf16 " + std::to_string(top_k) + " of " + std::to_string(experts) + ", n=" + std::to_string(n) +
                               " (" + std::to_string(distinct) + " experts)",
                           fixed + distinct * expert_bytes, 1, [&] { b.moe(p); }};
                    results.push_back(measure(b, c, t, stream, reps));
                }
            }
            if (wanted("kda"))
                for (int64_t hidden : kda_hidden) {
                    bench::Shapes shapes;
                    shapes.hidden = hidden;
                    std::vector<bench::PreparedCase> layers;
                    struct Release {  // the layers' buffers, also when a later layer does not fit
                        Backend& b;
                        std::vector<bench::PreparedCase>& layers;
                        ~Release() {
                            for (bench::PreparedCase& pc : layers)
                                for (Buffer* buf : pc.buffers) b.release(buf);
                        }
                    } release{b, layers};
                    uint64_t bytes = 0;
                    for (int64_t l = 0; l < kda_layers; ++l) {
                        layers.push_back(bench::prepare(b, "kda", shapes, bench::CaseOptions{}));
                        bytes += layers.back().bytes;
                    }
                    Case c{"kda decode, hidden " + std::to_string(hidden) + ", 32x128 heads x " + std::to_string(kda_layers) +
                               " layers",
                           bytes, kda_layers, [&] {
                               for (bench::PreparedCase& pc : layers) pc.run();
                           }};
                    results.push_back(measure(b, c, t, stream, reps));
                }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_weight_stream: %s with %d threads: %s\n", plugin.c_str(), t, e.what());
            return 1;
        }
    }

    for (const std::string& d : devices) std::printf("plugin: %s on %s\n", plugin.c_str(), d.c_str());
    std::printf("each call cold, after a streaming read of %.2f GB with the same threads; weights %llu bytes past a "
                "64-byte boundary; medians of %d; ratio: the call's GB/s over the stream pass just before it\n\n",
                double(stream_bytes) / 1e9, static_cast<unsigned long long>(weight_offset), reps);
    std::printf("| case | threads | MB read | ms | µs per op | GB/s | stream GB/s | ratio to stream |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    nlohmann::ordered_json j;
    j["cpu"] = cpu;
    j["plugin"] = plugin;
    j["devices"] = devices;
    j["stream_bytes"] = stream_bytes;
    j["weight_offset"] = weight_offset;
    j["reps"] = reps;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const Result& r : results) {
        std::printf("| %s | %d | %.1f | %.3f | %.1f | %.2f | %.2f | %.3f |\n", r.name.c_str(), r.threads,
                    double(r.bytes) / 1e6, r.ms, 1e3 * r.ms / double(r.ops), r.gbs, r.stream_gbs, r.ratio);
        nlohmann::ordered_json o;
        o["case"] = r.name;
        o["threads"] = r.threads;
        o["bytes"] = r.bytes;
        o["ops"] = r.ops;
        o["median_ms"] = r.ms;
        o["median_gbs"] = r.gbs;
        o["median_stream_gbs"] = r.stream_gbs;
        o["median_ratio_to_stream"] = r.ratio;
        rows.push_back(o);
    }
    j["results"] = rows;
    std::printf("%s\n", j.dump().c_str());
    if (!json_out.empty()) {
        std::ofstream f(json_out);
        f << j.dump(2) << "\n";
        if (!f) {
            std::fprintf(stderr, "bench_weight_stream: cannot write %s\n", json_out.c_str());
            return 1;
        }
    }
    return 0;
}
