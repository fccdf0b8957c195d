#include "core/membw.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12 false positives inside the intrinsics headers
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

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

#if defined(__x86_64__)
// The same with 512-bit loads, four independent accumulators (used when the processor has AVX-512).
__attribute__((target("avx512f"))) uint64_t read_range_avx512(const uint64_t* p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 8));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 16));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 24));
    }
    uint64_t s = uint64_t(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
    for (; i < n; ++i) s += p[i];
    return s;
}
#endif

uint64_t read_fast(const uint64_t* p, size_t n) {
#if defined(__x86_64__)
    static const bool avx512 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    if (avx512 && reinterpret_cast<uintptr_t>(p) % 64 == 0) return read_range_avx512(p, n);
#endif
    return read_range(p, n);
}

}  // namespace

ReadStream::ReadStream(uint64_t bytes, int threads) : threads_(std::max(1, threads)) {
    words_ = size_t(bytes / 8) / 8 * 8;
    buf_ = static_cast<uint64_t*>(std::aligned_alloc(4096, (words_ * 8 + 4095) / 4096 * 4096));
    if (!buf_) return;
    // Touch every page from the thread that will read it (first-touch placement).
    std::vector<std::thread> pool;
    for (int t = 0; t < threads_; ++t)
        pool.emplace_back([&, t] {
            const size_t a = words_ * size_t(t) / size_t(threads_), b = words_ * size_t(t + 1) / size_t(threads_);
            for (size_t i = a; i < b; ++i) buf_[i] = i;
        });
    for (auto& th : pool) th.join();
}

ReadStream::~ReadStream() { std::free(buf_); }

double ReadStream::pass() {
    if (!buf_ || words_ == 0) return 0;
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(static_cast<size_t>(threads_));
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads_; ++t)
        pool.emplace_back([&, t] {
            // 64-byte aligned parts, so the wide loads stay aligned
            const size_t a = words_ * size_t(t) / size_t(threads_) / 8 * 8;
            const size_t b = t + 1 == threads_ ? words_ : words_ * size_t(t + 1) / size_t(threads_) / 8 * 8;
            sums[size_t(t)] = read_fast(buf_ + a, b - a);
        });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile uint64_t sink = 0;
    for (uint64_t v : sums) sink = sink + v;
    return double(bytes()) / s / 1e9;
}

BandwidthResult measure_read_bandwidth(uint64_t bytes, int threads, int passes) {
    BandwidthResult r;
    r.threads = std::max(1, threads);
    r.passes = std::max(1, passes);
    ReadStream stream(bytes, r.threads);
    r.bytes = stream.bytes();
    if (!stream.ok()) return r;
    std::vector<double> gbs;
    for (int p = 0; p < r.passes; ++p) gbs.push_back(stream.pass());
    std::sort(gbs.begin(), gbs.end());
    r.best_gbs = gbs.back();
    r.median_gbs = gbs[gbs.size() / 2];
    return r;
}

}  // namespace halo
