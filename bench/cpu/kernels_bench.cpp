// CPU kernel benchmark: GFLOP/s of the matrix product kernel on prefill shapes and GB/s of its matrix-vector form
// on decode shapes, single-threaded and with all threads, for BF16 weights; then, per weight format (BF16, int8,
// int4; exact and, where AVX512-VNNI exists, with int8 activations: HALO_CPU_QUANT_DOT), decode through many expert-sized matrices (2 GB of them, more than the caches of a server processor with a
// 480 MB L3 hold, as a MoE decode token reads them) and an lm_head-sized one, as a fraction of the memory read bandwidth measured in the same run, and the prefill
// product's GFLOP/s; then the KDA recurrence of one decode token (decay, delta rule, output) over 512 MB of 128 x 128
// F32 head states, against the plugin's in-place scale over the same states: both read and write every state once,
// so their time ratio is the recurrence's fraction of its state-traffic limit. Prints tables and JSON lines.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/membw.h"
#include "ops/dtype.h"
#include "ops/reference/quantize.h"
#include "plugins/cpu/context.h"

using namespace halo;

namespace {

// With one thread, CPU time of this thread (robust to other load on a shared machine); else wall time.
double now(bool cpu_time) {
    if (cpu_time) {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool g_cpu_time = false;

double seconds_of(const std::function<void()>& f, int reps) {
    f();  // warm up
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const double t0 = now(g_cpu_time);
        f();
        t.push_back(now(g_cpu_time) - t0);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    cpu::CpuContext ctx(threads);
    g_cpu_time = threads == 1;
    std::printf("kernels: %s, %d threads (%s)\n", ctx.k.isa, threads, g_cpu_time ? "thread CPU time" : "wall time");
    nlohmann::json out = nlohmann::json::array();
    std::printf("| shape (M x N x K) | form | ms | GFLOP/s | GB/s of weights |\n|---|---|---|---|---|\n");
    struct Shape {
        int64_t M, N, K;
    };
    for (Shape s : {Shape{512, 4096, 2304}, {512, 2304, 4096}, {128, 1024, 2304}, {64, 1024, 2304}, {33, 1024, 2304},
                    {32, 1024, 2304}, {16, 1024, 2304}, {5, 1024, 2304}, {1, 4096, 2304}, {1, 163840, 2304},
                    {1, 1024, 2304}, {4, 4096, 2304}}) {
        std::vector<uint16_t> w(size_t(s.N * s.K));
        for (size_t i = 0; i < w.size(); ++i) w[i] = ops::f32_to_bf16(float(int(i % 251) - 125) * 1e-3f);
        std::vector<float> x(size_t(s.M * s.K), 0.5f), y(size_t(s.M * s.N));
        cpu::Matrix m{w.data(), ops::DType::bf16, s.N, s.K, s.K, false};
        const int reps = s.M == 1 ? 20 : 3;
        const double sec = seconds_of([&] { ctx.matmul(s.M, x.data(), s.K, m, y.data(), s.N); }, reps);
        const double gflops = 2.0 * double(s.M * s.N * s.K) / sec / 1e9;
        const double gbs = double(w.size() * 2) / sec / 1e9;
        std::printf("| %lld x %lld x %lld | %s | %.2f | %.1f | %.1f |\n", (long long)s.M, (long long)s.N, (long long)s.K,
                    s.M <= 32 ? "unpacked" : "packed", sec * 1e3, gflops, gbs);
        out.push_back({{"M", s.M}, {"N", s.N}, {"K", s.K}, {"ms", sec * 1e3}, {"gflops", gflops}, {"weight_gbs", gbs}});
    }
    std::printf("%s\n", out.dump().c_str());

    // Per weight format. Weights: a smooth pattern quantized with the engine's own recipe (group 32, BF16 scales).
    const halo::BandwidthResult bw = halo::measure_read_bandwidth(uint64_t(2e9), threads, 5);
    std::printf("\nmemory read bandwidth: %.1f GB/s best, %.1f median (%d threads, 2 GB)\n", bw.best_gbs, bw.median_gbs,
                bw.threads);
    std::printf("| format | decode: experts 1024 x 2304 (2 GB of them), GB/s | of bandwidth | decode: lm_head 163840 x 2304, GB/s "
                "| of bandwidth | prefill 512 x 4096 x 2304, GFLOP/s |\n|---|---|---|---|---|---|\n");
    nlohmann::json formats = nlohmann::json::array();
    struct Weights {
        std::vector<uint8_t> data, scales;
        cpu::Matrix m;
        uint64_t bytes = 0;
    };
    auto make = [](ops::DType dt, int64_t N, int64_t K, int seed) {
        Weights w;
        std::vector<float> f(size_t(N * K));
        for (size_t i = 0; i < f.size(); ++i) f[i] = float(int((i * 7 + size_t(seed) * 13) % 251) - 125) * 1e-3f;
        if (dt == ops::DType::bf16) {
            w.data.resize(f.size() * 2);
            for (size_t i = 0; i < f.size(); ++i) {
                const uint16_t h = ops::f32_to_bf16(f[i]);
                std::memcpy(w.data.data() + 2 * i, &h, 2);
            }
            w.m = cpu::Matrix{w.data.data(), dt, N, K, K, false};
        } else {
            w.data.resize(size_t(N) * ops::row_bytes(dt, K));
            w.scales.resize(size_t(N * ((K + 31) / 32)) * 2);
            halo::ref::quantize_rows(f.data(), ops::DType::f32, N, K, dt, 32, ops::DType::bf16, w.data.data(), w.scales.data());
            w.m = cpu::Matrix{w.data.data(), dt, N, K, K, false, w.scales.data(), ops::DType::bf16, 32};
        }
        w.bytes = w.data.size() + w.scales.size();
        return w;
    };
    struct Case {
        ops::DType dt;
        cpu::QuantDot dot;
        const char* name;
    };
    std::vector<Case> cases = {{ops::DType::bf16, cpu::QuantDot::exact, "BF16"},
                               {ops::DType::q8, cpu::QuantDot::exact, "int8 g32, exact"},
                               {ops::DType::q4, cpu::QuantDot::exact, "int4 g32, exact"}};
    if (cpu::cpu_has_avx512_vnni() && std::string(ctx.k.isa) != "generic") {
        cases.push_back({ops::DType::q8, cpu::QuantDot::int8, "int8 g32, int8 dot"});
        cases.push_back({ops::DType::q4, cpu::QuantDot::int8, "int4 g32, int8 dot"});
    }
    for (const Case& cs : cases) {
        const ops::DType dt = cs.dt;
        const char* name = cs.name;
        cpu::g_quant_dot = cs.dot;
        std::vector<Weights> experts;
        uint64_t expert_bytes = 0;
        const Weights first = make(dt, 1024, 2304, 0);
        while (expert_bytes < uint64_t(2e9)) {  // copies of one expert: the bytes are what matters
            experts.push_back(first);
            Weights& w = experts.back();
            w.m.data = w.data.data();
            w.m.scales = w.scales.empty() ? nullptr : w.scales.data();
            expert_bytes += w.bytes;
        }
        std::vector<float> x(2304 * 512, 0.25f), y(size_t(163840) * 4);
        const double t_exp = seconds_of([&] {
            for (const Weights& w : experts) ctx.matmul(1, x.data(), 2304, w.m, y.data(), 1024);
        }, 5);
        experts.clear();
        const Weights head = make(dt, 163840, 2304, 1);
        const double t_head = seconds_of([&] { ctx.matmul(1, x.data(), 2304, head.m, y.data(), 163840); }, 5);
        const Weights big = make(dt, 4096, 2304, 2);
        std::vector<float> yp(size_t(512) * 4096);
        // A prompt chunk takes the packed panels (CpuContext::matmul with a step's batch of one long run).
        const double t_pre = seconds_of([&] { ctx.matmul_with(ctx.k.matmul_packed, 512, x.data(), 2304, big.m, yp.data(), 4096, false); }, 3);
        const double gbs_exp = double(expert_bytes) / t_exp / 1e9, gbs_head = double(head.bytes) / t_head / 1e9;
        const double gflops = 2.0 * 512 * 4096 * 2304 / t_pre / 1e9;
        std::printf("| %s | %.1f | %.2f | %.1f | %.2f | %.1f |\n", name, gbs_exp, gbs_exp / bw.best_gbs, gbs_head,
                    gbs_head / bw.best_gbs, gflops);
        formats.push_back({{"format", name}, {"experts_gbs", gbs_exp}, {"experts_fraction_of_bandwidth", gbs_exp / bw.best_gbs},
                           {"lm_head_gbs", gbs_head}, {"lm_head_fraction_of_bandwidth", gbs_head / bw.best_gbs},
                           {"prefill_gflops", gflops}});
    }
    std::printf("%s\n", nlohmann::json{{"bandwidth_gbs_best", bw.best_gbs}, {"formats", formats}}.dump().c_str());

    // The KDA recurrence of one token over many head states (the op's per-head call: decay = exp(g), then
    // delta_step), against Kernels::scale over the same states (a read and a write of each, nothing else). The two
    // alternate, medians of 5 each.
    {
        const int64_t K = 128, state_floats = K * K, heads = int64_t(512e6) / (state_floats * 4);
        std::vector<float> states(size_t(heads * state_floats));
        for (size_t i = 0; i < states.size(); ++i) states[i] = float(int(i % 199) - 99) * 1e-4f;
        std::vector<float> q(K), kk(K), v(K), g(K), o(size_t(threads) * K), decay(size_t(threads) * K);
        for (int64_t d = 0; d < K; ++d) {  // unit-norm k, as the op gives it (q also carries K^-0.5 there)
            q[d] = kk[d] = 1.0f / std::sqrt(float(K)) * (d % 2 ? 1.0f : -1.0f);
            v[d] = float(d % 7) * 0.1f;
            g[d] = -0.01f * float(d % 5 + 1);
        }
        auto recurrence = [&] {
            ctx.pool.run(heads, [&](int64_t h, int t) {
                float* dec = decay.data() + t * K;
                ctx.k.exp(g.data(), dec, K);
                ctx.k.delta_step(states.data() + h * state_floats, K, K, q.data(), kk.data(), v.data(), dec, 0.5f,
                                 o.data() + t * K);
            });
        };
        auto update = [&] {
            ctx.pool.run(heads, [&](int64_t h, int) { ctx.k.scale(states.data() + h * state_floats, 0.999f, state_floats); });
        };
        recurrence();
        update();
        std::vector<double> t_rec, t_upd;
        for (int r = 0; r < 5; ++r) {
            double t0 = now(false);
            update();
            t_upd.push_back(now(false) - t0);
            t0 = now(false);
            recurrence();
            t_rec.push_back(now(false) - t0);
        }
        std::sort(t_rec.begin(), t_rec.end());
        std::sort(t_upd.begin(), t_upd.end());
        const double traffic = 2.0 * double(states.size()) * 4;  // read and written back
        const double rec = traffic / t_rec[2] / 1e9, upd = traffic / t_upd[2] / 1e9;
        std::printf("\n| KDA decode recurrence, %lld heads of 128 x 128 F32 (%.0f MB) | us per head | GB/s read + written "
                    "| in-place scale, GB/s | of the state-traffic limit | of read bandwidth (read bytes) |\n"
                    "|---|---|---|---|---|---|\n| %d threads | %.2f | %.1f | %.1f | %.2f | %.2f |\n",
                    (long long)heads, double(states.size()) * 4 / 1e6, threads, 1e6 * t_rec[2] / double(heads), rec, upd,
                    rec / upd, rec / 2 / bw.best_gbs);
        std::printf("%s\n", nlohmann::json{{"kda_recurrence_gbs", rec}, {"in_place_scale_gbs", upd},
                                            {"fraction_of_state_traffic_limit", rec / upd},
                                            {"fraction_of_read_bandwidth", rec / 2 / bw.best_gbs}}.dump().c_str());
    }
}
