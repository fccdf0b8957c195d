// CPU kernel benchmark: GFLOP/s of the matrix product kernel on prefill shapes and GB/s of its matrix-vector form
// on decode shapes, single-threaded and with all threads, for BF16 weights. Prints a table and a JSON line.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ops/dtype.h"
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
}
