// The CPU plugin's matrix kernels called directly, with every kernel set this processor runs. The few-row order
// (Kernels::matmul_rows) must give each row of x the same bits whatever other rows share the call: a decode token's
// logits then do not depend on the batch, and a MoE expert's rows (however many a step routes to it) come out as they
// would alone. Every result is also checked against a float64 sum of the same products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ops/dtype.h"
#include "plugins/cpu/kernels.h"

namespace halo::test {
namespace {

using cpu::Kernels;
using cpu::Matrix;
using ops::DType;

std::vector<const Kernels*> kernel_sets() {
    std::vector<const Kernels*> sets{&cpu::generic_kernels()};
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        sets.push_back(&cpu::avx512_kernels());
#endif
    if (cpu::cpu_has_avx512bf16()) sets.push_back(&cpu::avx512bf16_kernels());
    if (cpu::cpu_has_amx()) sets.push_back(&cpu::amx_kernels());
    return sets;
}

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], FreeDeleter>;
Buffer aligned_floats(int64_t n) { return Buffer(static_cast<float*>(std::aligned_alloc(64, size_t(n + 16) * 4))); }

// A weight matrix [N, K] with row stride ld, stored in dtype at `offset` bytes past a 64-byte boundary, and its
// values as float (what the kernels read).
struct Weights {
    std::vector<char> bytes;
    std::vector<float> values;  // [N][K]
    Matrix m;
};
Weights make_weights(DType dt, int64_t N, int64_t K, int64_t ld, int64_t offset, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Weights w;
    const size_t es = ops::dtype_size(dt);
    w.bytes.assign(size_t(N * ld) * es + size_t(offset) + 128, 0);
    char* base = w.bytes.data() + (64 - reinterpret_cast<uintptr_t>(w.bytes.data()) % 64) % 64 + offset;
    w.values.resize(size_t(N * K));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
            const float v = dist(rng);
            char* at = base + size_t(n * ld + k) * es;
            float stored = v;
            if (dt == DType::bf16) {
                const uint16_t h = ops::f32_to_bf16(v);
                std::memcpy(at, &h, 2);
                stored = ops::bf16_to_f32(h);
            } else if (dt == DType::f16) {
                const uint16_t h = ops::f32_to_f16(v);
                std::memcpy(at, &h, 2);
                stored = ops::f16_to_f32(h);
            } else {
                std::memcpy(at, &v, 4);
            }
            w.values[size_t(n * K + k)] = stored;
        }
    w.m = Matrix{base, dt, N, K, ld, false};
    return w;
}

struct Shape {
    int64_t N, K, ld, offset;
};

// Shapes around the blocked form's edges: K under, at and past its 256-value blocks and not a multiple of 16; N
// past its 64-row slices and not a multiple of 4; padded rows; rows that start off a 64-byte line; K = 0 (sums of
// nothing are zero).
const Shape kShapes[] = {{5, 16, 16, 0},     {9, 40, 48, 24},      {64, 256, 256, 0},  {70, 300, 300, 8},
                         {130, 520, 528, 0}, {67, 1000, 1000, 24}, {33, 2304, 2304, 0}, {6, 0, 0, 0}};
const int64_t kRows[] = {1, 2, 3, 4, 5, 6, 7, 12, 16, 33, 40};

TEST(CpuKernels, FewRowOrderGivesEachRowTheSameBitsWhateverRowsShareTheCall) {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    auto pack = aligned_floats(cpu::kPackBufferFloats);
    for (const Kernels* ks : kernel_sets())
        for (DType dt : {DType::bf16, DType::f16, DType::f32})
            for (const Shape& s : kShapes) {
                const Weights w = make_weights(dt, s.N, s.K, s.ld, s.offset, rng);
                const int64_t M = 43, ldx = s.K + 3;  // up to 40 rows from row 3
                std::vector<float> x(size_t(M * ldx));
                for (float& v : x) v = dist(rng);
                // Each row alone (one row of x: the decode form), over all outputs.
                std::vector<float> alone(size_t(M * s.N));
                for (int64_t m = 0; m < M; ++m)
                    ks->matmul_rows(1, x.data() + m * ldx, ldx, w.m, 0, s.N, alone.data() + m * s.N, s.N, false,
                                    pack.get());
                // float64 sums, and how far a float32 sum in 16 lanes may be from them: (K / 16 + 8) roundings of
                // at most the sum of |products| each.
                std::vector<double> ref(size_t(M * s.N)), bound(size_t(M * s.N));
                for (int64_t m = 0; m < M; ++m)
                    for (int64_t n = 0; n < s.N; ++n) {
                        double sum = 0, mag = 0;
                        for (int64_t k = 0; k < s.K; ++k) {
                            const double p = double(w.values[size_t(n * s.K + k)]) * x[size_t(m * ldx + k)];
                            sum += p;
                            mag += std::fabs(p);
                        }
                        ref[size_t(m * s.N + n)] = sum;
                        bound[size_t(m * s.N + n)] = double(s.K / 16 + 8) * 0x1p-24 * mag;
                        ASSERT_NEAR(alone[size_t(m * s.N + n)], sum, bound[size_t(m * s.N + n)])
                            << ks->isa << " " << ops::dtype_name(dt) << " K " << s.K << " row " << m << " output " << n;
                    }
                for (int64_t rows : kRows)
                    for (int64_t first : {int64_t(0), int64_t(3)}) {
                        // rows of x from row `first` on, outputs [n0, N): the same bits as each row alone.
                        const int64_t n0 = s.N > 4 ? 3 : 0, ldy = s.N + 5;
                        std::vector<float> y(size_t(rows * ldy), -7.0f);
                        const float* xf = x.data() + first * ldx;
                        ks->matmul_rows(rows, xf, ldx, w.m, n0, s.N, y.data(), ldy, false, pack.get());
                        int64_t differ = 0;
                        for (int64_t m = 0; m < rows; ++m)
                            for (int64_t n = n0; n < s.N; ++n)
                                differ += y[size_t(m * ldy + n)] != alone[size_t((first + m) * s.N + n)];
                        EXPECT_EQ(differ, 0) << ks->isa << " " << ops::dtype_name(dt) << " N " << s.N << " K " << s.K
                                             << ": " << rows << " rows from row " << first;
                        for (int64_t m = 0; m < rows; ++m)
                            for (int64_t n = 0; n < n0; ++n)
                                ASSERT_EQ(y[size_t(m * ldy + n)], -7.0f) << "an output outside the range was written";
                        // Accumulating adds each sum to what is there.
                        std::vector<float> acc(size_t(rows * ldy), 0.5f);
                        ks->matmul_rows(rows, xf, ldx, w.m, n0, s.N, acc.data(), ldy, true, pack.get());
                        differ = 0;
                        for (int64_t m = 0; m < rows; ++m)
                            for (int64_t n = n0; n < s.N; ++n)
                                differ += acc[size_t(m * ldy + n)] != 0.5f + alone[size_t((first + m) * s.N + n)];
                        EXPECT_EQ(differ, 0) << ks->isa << " " << ops::dtype_name(dt) << " K " << s.K
                                             << ", accumulate, " << rows << " rows";
                        // The product that picks its kernel by the rows agrees with float64 to float32 rounding.
                        std::vector<float> any(size_t(rows * ldy));
                        ks->matmul(rows, xf, ldx, w.m, n0, s.N, any.data(), ldy, false, pack.get());
                        for (int64_t m = 0; m < rows; ++m)
                            for (int64_t n = n0; n < s.N; ++n) {
                                const size_t i = size_t((first + m) * s.N + n);
                                ASSERT_NEAR(any[size_t(m * ldy + n)], ref[i], bound[i]) << ks->isa << " "
                                    << ops::dtype_name(dt) << " matmul, " << rows << " rows, K " << s.K;
                            }
                    }
            }
}

}  // namespace
}  // namespace halo::test
