// Compute kernels of the CPU plugin, compiled once per instruction set (kernels_impl.h) and picked at start-up
// by what the processor supports. Everything above this table (the ops) is plain C++ and ISA-independent.
#pragma once

#include <cstdint>

#include "ops/dtype.h"

namespace halo::cpu {

// A matrix operand read by matmul: W [rows, cols] row-major with leading dimension ld (elements), in any float
// dtype; or, with kn set, a matrix stored as [cols, rows] (that is, W^T row-major with leading dimension ld).
// Quantized dtypes (q4 / q8, compressed-tensors pack-quantized words) are read as stored, with no repacking: a
// stored row of ld elements takes ops::row_bytes(dtype, ld) bytes, and scales holds one scale per `group` elements
// of each stored row ([stored rows, ceil(ld / group)] of scale_dtype). data must point at the start of a stored row.
struct Matrix {
    const void* data = nullptr;
    ops::DType dtype = ops::DType::f32;
    int64_t rows = 0;  // N: outputs
    int64_t cols = 0;  // K: reduction length
    int64_t ld = 0;
    bool kn = false;
    const void* scales = nullptr;  // quantized dtypes only
    ops::DType scale_dtype = ops::DType::bf16;
    int64_t group = 0;

    bool quantized() const { return ops::is_quantized(dtype); }
    uint64_t stored_row_bytes() const { return ops::row_bytes(dtype, ld); }
    int64_t scale_ld() const { return group > 0 ? (ld + group - 1) / group : 0; }
};

// How rows of x meet quantized weights in the few-row form. exact (the default): weights dequantized exactly, x in
// f32. int8: x quantized per 32 inputs to int8 with an f32 scale (as llama.cpp's q8_0 activations) and summed in
// integers with AVX512-VNNI, then scaled: faster, and off from the exact result by x's rounding (about 0.4% of a
// block's largest |x| per element). Set once per process from HALO_CPU_QUANT_DOT by the plugin.
enum class QuantDot { exact, int8 };
inline QuantDot g_quant_dot = QuantDot::exact;

// Floats of per-thread scratch that matmul_packed may use (one packed panel of W).
constexpr int64_t kPackFloats = 32 * 256;
// Floats of the same scratch that matmul_rows (and matmul, which takes its blocked form for 5 to 32 rows) may use:
// four weight rows as f32 up to K = 16,384 (portable kernels), or a block of four weight rows and the 16-lane sums
// of a slice (AVX-512).
constexpr int64_t kRowPackFloats = 4 * 16384;
constexpr int64_t kPackBufferFloats = kPackFloats > kRowPackFloats ? kPackFloats : kRowPackFloats;

struct Kernels {
    const char* isa;  // "amx", "avx512bf16", "avx512", "generic"
    // y[m, n] (+)= sum_k x[m, k] * W[n, k] for m in [0, M), n in [n0, n1). pack: kPackBufferFloats floats of scratch.
    void (*matmul)(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                   int64_t ldy, bool accumulate, float* pack);
    // matmul where each y[m, n] is summed in one fixed order whatever M is (16 lanes over k, then across the lanes:
    // the few-row form's order), so a row's result does not depend on the other rows in the call. The model's
    // projections use it: a sequence then computes the same bits alone or batched. W row-major only (not kn).
    // pack: kPackBufferFloats floats of scratch.
    void (*matmul_rows)(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                        int64_t ldy, bool accumulate, float* pack);
    // matmul always by packed panels, whatever M is: each y[m, n] is summed in the panel order (lanes over n, k in
    // order) for any M. Prompt rows use it under batch invariance. W in either layout. pack: kPackFloats floats.
    void (*matmul_packed)(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                          int64_t ldy, bool accumulate, float* pack);
    float (*dot)(const float* a, const float* b, int64_t n);
    void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
    void (*scale)(float* y, float a, int64_t n);                 // y *= a
    void (*mul)(const float* a, float* y, int64_t n);            // y *= a (elementwise)
    void (*exp)(const float* x, float* y, int64_t n);            // y = exp(x); y may alias x
    void (*to_f32)(const void* src, ops::DType dtype, float* dst, int64_t n);
    float (*sum_squares)(const float* x, int64_t n);
    // One token of the KDA delta rule for one head, state S [K][V] updated in place:
    //   S = diag(decay) S ; u = beta (v - k^T S) ; S += k u^T ; o = q^T S.   decay, q, k [K]; v, o [V].
    void (*delta_step)(float* S, int64_t K, int64_t V, const float* q, const float* k, const float* v,
                       const float* decay, float beta, float* o);
    // e = exp(gi - gj) over n channels; out[0] = sum a*b*e, out[1] = sum c*b*e (the chunked KDA pair terms).
    void (*pair_dots)(const float* gi, const float* gj, const float* a, const float* b, const float* c, int64_t n,
                      float* out);
    // Absorbed MLA attention, 32 query rows at a time, on cached rows c_j (f32, row j at c + j * ld).
    // scores32: s[j * 32 + i] = sum_k qt[k * 32 + i] c_j[k] for j < n, k < K (qt: the 32 rows transposed, [K][32]).
    void (*scores32)(const float* qt, const float* c, int64_t ld, int64_t K, int64_t n, float* s);
    // attend32: acc[i * lda + e] += sum_j p[j * 32 + i] c_j[e] for rows i < R (<= 32), e < E, j < n in order.
    void (*attend32)(const float* p, int64_t R, const float* c, int64_t ld, int64_t E, int64_t n, float* acc,
                     int64_t lda);
};

const Kernels& generic_kernels();
const Kernels& avx512_kernels();      // only valid where the CPU has AVX-512 F/BW/VL/DQ
const Kernels& avx512bf16_kernels();  // and AVX512_BF16: prompt rows of BF16 weights by vdpbf16ps
const Kernels& amx_kernels();         // and AMX-BF16: prompt rows of BF16 weights on AMX tiles
bool cpu_has_avx512_vnni();            // the int8 dot of QuantDot::int8 can run
bool cpu_has_avx512bf16();             // avx512bf16_kernels() can run
bool cpu_has_amx();                    // amx_kernels() can run (asks Linux for the tile state once)
// The table to use: the best for this processor, or the one HALO_CPU_ISA names (generic, avx512, avx512bf16, amx;
// auto or unset = the best: amx, else avx512, else generic). Throws std::runtime_error (a sentence listing the valid values) when HALO_CPU_ISA names an
// unknown set or one this processor or build lacks.
const Kernels& best_kernels();

}  // namespace halo::cpu
