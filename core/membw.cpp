#include "core/membw.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace halo {

namespace {

// Sums 64-bit words with independent accumulators so loads, not the adds, set the pace.
uint64_t read_range(const uint64_t* p, size_t n) {
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3];
        e += p[i + 4]; f += p[i + 5]; g += p[i + 6]; h += p[i + 7];
    }
    for (; i < n; ++i) a += p[i];
    return a + b + c + d + e + f + g + h;
}

}  // namespace

BandwidthResult measure_read_bandwidth(uint64_t bytes, int threads, int passes) {
    BandwidthResult r;
    r.threads = std::max(1, threads);
    r.passes = std::max(1, passes);
    const size_t words = size_t(bytes / 8);
    r.bytes = uint64_t(words) * 8;
    uint64_t* buf = static_cast<uint64_t*>(std::aligned_alloc(4096, (words * 8 + 4095) / 4096 * 4096));
    if (!buf) return r;
    // Touch every page from the thread that will read it (first-touch placement).
    std::vector<std::thread> pool;
    for (int t = 0; t < r.threads; ++t)
        pool.emplace_back([&, t] {
            const size_t a = words * size_t(t) / size_t(r.threads), b = words * size_t(t + 1) / size_t(r.threads);
            for (size_t i = a; i < b; ++i) buf[i] = i;
        });
    for (auto& th : pool) th.join();
    std::vector<double> gbs;
    volatile uint64_t sink = 0;
    for (int p = 0; p < r.passes; ++p) {
        pool.clear();
        std::vector<uint64_t> sums(static_cast<size_t>(r.threads));
        const auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < r.threads; ++t)
            pool.emplace_back([&, t] {
                const size_t a = words * size_t(t) / size_t(r.threads), b = words * size_t(t + 1) / size_t(r.threads);
                sums[size_t(t)] = read_range(buf + a, b - a);
            });
        for (auto& th : pool) th.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (uint64_t v : sums) sink = sink + v;
        gbs.push_back(double(r.bytes) / s / 1e9);
    }
    std::free(buf);
    std::sort(gbs.begin(), gbs.end());
    r.best_gbs = gbs.back();
    r.median_gbs = gbs[gbs.size() / 2];
    return r;
}

}  // namespace halo
