// Kernel bodies, included by kernels_avx512.cpp and kernels_generic.cpp inside namespace HALO_KERNEL_NS. With
// HALO_KERNELS_AVX512 set (and the includer's `#pragma GCC target` enabling AVX-512 for these functions only) the
// hot loops use AVX-512 intrinsics; otherwise plain loops the compiler vectorises for the baseline ISA.
// The includer includes the standard headers first, so no shared inline function is compiled for AVX-512.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "plugins/cpu/kernels.h"

#if HALO_KERNELS_AVX512
#include <immintrin.h>
#endif

namespace halo::cpu::HALO_KERNEL_NS {

using ops::DType;

constexpr int64_t kNr = 32;   // packed panel width (outputs)
constexpr int64_t kKb = 256;  // k block
constexpr int64_t kMr = 8;    // rows per micro-kernel call
constexpr int64_t kMatvecRows = 32;  // up to this many rows of x, weights are streamed without packing
// The few-row kernels prefetch the rows this far ahead of the tile being read (two tiles of four rows, one of
// eight): a tile's rows are short streams the hardware prefetcher picks up too late, and a decode token reads
// megabytes of experts, each from DRAM.
constexpr int64_t kPrefetchRows = 8;
// The packed kernel prefetches the weights of the panel this many panels ahead of the one it packs (into L2).
constexpr int64_t kPanelsAhead = 2;
static_assert(kNr * kKb == kPackFloats);

void to_f32(const void* src, DType dtype, float* dst, int64_t n) {
    if (dtype == DType::f32) {
        std::memcpy(dst, src, size_t(n) * 4);
        return;
    }
    const uint16_t* s = static_cast<const uint16_t*>(src);
    int64_t i = 0;
#if HALO_KERNELS_AVX512
    if (dtype == DType::bf16) {
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(
                                          _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(s + i))), 16)));
    } else {
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(s + i))));
    }
#endif
    if (dtype == DType::bf16)
        for (; i < n; ++i) dst[i] = ops::bf16_to_f32(s[i]);
    else
        for (; i < n; ++i) dst[i] = ops::f16_to_f32(s[i]);
}

#if HALO_KERNELS_AVX512
// 16 elements of a weight row as f32; mask selects the valid lanes of a tail.
inline __m512 load16(const void* base, DType t, int64_t i, __mmask16 m = 0xffff) {
    switch (t) {
    case DType::bf16: {
        const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case DType::f16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i));
    default: return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
    }
}
#endif

inline float scale_at(const void* srow, DType t, int64_t g) {
    switch (t) {
    case DType::bf16: return ops::bf16_to_f32(static_cast<const uint16_t*>(srow)[g]);
    case DType::f16: return ops::f16_to_f32(static_cast<const uint16_t*>(srow)[g]);
    default: return static_cast<const float*>(srow)[g];
    }
}

inline const char* stored_row(const Matrix& w, int64_t row) {
    return static_cast<const char*>(w.data) + size_t(row) * w.stored_row_bytes();
}

inline const char* scale_row(const Matrix& w, int64_t row) {
    return static_cast<const char*>(w.scales) + size_t(row) * size_t(w.scale_ld()) * ops::dtype_size(w.scale_dtype);
}

// Elements [c0, c0 + n) of stored row `row` of w as f32, every dtype (quantized ones dequantized exactly: q * scale).
void stored_to_f32(const Matrix& w, int64_t row, int64_t c0, int64_t n, float* dst) {
    const char* base = stored_row(w, row);
    if (!w.quantized()) {
        to_f32(base + size_t(c0) * ops::dtype_size(w.dtype), w.dtype, dst, n);
        return;
    }
    const char* srow = scale_row(w, row);
    const bool q4 = w.dtype == DType::q4;
    int64_t c = c0;
    const int64_t end = c0 + n;
#if HALO_KERNELS_AVX512
    // Whole 32-element blocks inside one group: 16 (q4) or 32 (q8) bytes to 32 floats in natural order.
    if (c % 32 == 0 && w.group % 32 == 0) {
        const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for (; c + 32 <= end; c += 32) {
            const __m512 sv = _mm512_set1_ps(scale_at(srow, w.scale_dtype, c / w.group));
            __m512 a, b;
            if (q4) {
                const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + c / 2)));
                const __m512 even = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, _mm512_set1_epi32(15)), _mm512_set1_epi32(8)));
                const __m512 odd = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), _mm512_set1_epi32(8)));
                a = _mm512_permutex2var_ps(even, lo_idx, odd);
                b = _mm512_permutex2var_ps(even, hi_idx, odd);
            } else {
                const __m128i bias = _mm_set1_epi8(char(0x80));
                a = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + c)), bias)));
                b = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + c + 16)), bias)));
            }
            _mm512_storeu_ps(dst + (c - c0), _mm512_mul_ps(a, sv));
            _mm512_storeu_ps(dst + (c - c0) + 16, _mm512_mul_ps(b, sv));
        }
    }
#endif
    while (c < end) {
        const int64_t g = c / w.group, stop = std::min(end, (g + 1) * w.group);
        const float sv = scale_at(srow, w.scale_dtype, g);
        // The format as a constant per loop, so quant_value's word arithmetic becomes shifts.
        if (q4)
            for (; c < stop; ++c) dst[c - c0] = float(ops::quant_value(base, DType::q4, c)) * sv;
        else
            for (; c < stop; ++c) dst[c - c0] = float(ops::quant_value(base, DType::q8, c)) * sv;
    }
}

#if HALO_KERNELS_AVX512
// Few-row form for quantized rows read as stored (q4 / q8 words, one scale per 32-element block at least: group a
// multiple of 32, K a multiple of 32). Per block, each lane sums its elements' q * x, then the block is scaled:
// acc += scale * (sum q x). The sums run in one fixed order whatever the rows of x, so rows stay batch invariant.
// q4 bytes hold elements 2j (low nibble) and 2j + 1 (high nibble): x is split into even and odd lanes to match.
template <int MR, int NR>
void tile_q(const float* x, int64_t ldx, const char* const* rows, const float* const* scales, DType dt, int64_t K,
            float* y, int64_t ldy, bool acc, int64_t ahead) {
    __m512 a[NR][MR];
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) a[r][m] = _mm512_setzero_ps();
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    // q4: a lane holds one byte; vpermps reads only the low 4 bits of its index, so the table maps a nibble u to
    // u - 8 without masking or converting.
    const __m512 q4_table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    if (dt == DType::q4) {
        for (int64_t k = 0; k < K; k += 32) {
            const int64_t blk = k / 32;
            __m512 xe[MR], xo[MR];
            for (int m = 0; m < MR; ++m) {
                const __m512 x0 = _mm512_loadu_ps(x + m * ldx + k), x1 = _mm512_loadu_ps(x + m * ldx + k + 16);
                xe[m] = _mm512_permutex2var_ps(x0, even_idx, x1);
                xo[m] = _mm512_permutex2var_ps(x0, odd_idx, x1);
            }
            for (int r = 0; r < NR; ++r) {
                if (k % 128 == 0) _mm_prefetch(rows[r] + k / 2 + ahead, _MM_HINT_T0);
                const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + k / 2)));
                const __m512 lo = _mm512_permutexvar_ps(v, q4_table);
                const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), q4_table);
                const __m512 sv = _mm512_set1_ps(scales[r][blk]);
                for (int m = 0; m < MR; ++m)
                    a[r][m] = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, xo[m], _mm512_mul_ps(lo, xe[m])), sv, a[r][m]);
            }
        }
    } else {
        // q8: stored u = q + 128; the offset is folded in as -128 (x0 + x1), once per row of x and block.
        for (int64_t k = 0; k < K; k += 32) {
            const int64_t blk = k / 32;
            __m512 x0[MR], x1[MR], xc[MR];
            for (int m = 0; m < MR; ++m) {
                x0[m] = _mm512_loadu_ps(x + m * ldx + k);
                x1[m] = _mm512_loadu_ps(x + m * ldx + k + 16);
                xc[m] = _mm512_mul_ps(_mm512_add_ps(x0[m], x1[m]), _mm512_set1_ps(-128.0f));
            }
            for (int r = 0; r < NR; ++r) {
                const char* p = rows[r] + k;
                if (k % 64 == 0) _mm_prefetch(p + ahead, _MM_HINT_T0);
                const __m512 u0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
                const __m512 u1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
                const __m512 sv = _mm512_set1_ps(scales[r][blk]);
                for (int m = 0; m < MR; ++m)
                    a[r][m] = _mm512_fmadd_ps(_mm512_fmadd_ps(u1, x1[m], _mm512_fmadd_ps(u0, x0[m], xc[m])), sv, a[r][m]);
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) {
            const float v = _mm512_reduce_add_ps(a[r][m]);
            y[m * ldy + r] = acc ? y[m * ldy + r] + v : v;
        }
}

template <int NR>
void tile_q_rows(int mr, const float* x, int64_t ldx, const char* const* rows, const float* const* scales, DType dt,
                 int64_t K, float* y, int64_t ldy, bool acc, int64_t ahead) {
    switch (mr) {
    case 1: tile_q<1, NR>(x, ldx, rows, scales, dt, K, y, ldy, acc, ahead); break;
    case 2: tile_q<2, NR>(x, ldx, rows, scales, dt, K, y, ldy, acc, ahead); break;
    case 3: tile_q<3, NR>(x, ldx, rows, scales, dt, K, y, ldy, acc, ahead); break;
    default: tile_q<4, NR>(x, ldx, rows, scales, dt, K, y, ldy, acc, ahead); break;
    }
}
#endif

#if HALO_KERNELS_AVX512
// a[r][m] += the 32 BF16 weights v (one 64-byte piece of row r) times x[m] (xl: its first 16, xh: the next 16), the
// first 16 products before the next 16: every path of the few-row form adds them in this order.
template <int MR>
inline void fma_bf16_line(__m512i v, const __m512* xl, const __m512* xh, __m512* a) {
    const __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16));
    const __m512 hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
    for (int m = 0; m < MR; ++m) a[m] = _mm512_fmadd_ps(lo, xl[m], a[m]);
    for (int m = 0; m < MR; ++m) a[m] = _mm512_fmadd_ps(hi, xh[m], a[m]);
}

// The BF16 rows' bytes before the first one's 64-byte boundary, when every row has that many (0: aligned; -1: the
// rows differ, or an odd count). Tensors in a safetensors file start wherever the previous one ended (8 + header
// length + offsets), so mapped in place they are rarely aligned, and each 64-byte load would span two lines.
template <int NR>
inline int64_t shared_misalignment(const char* const* rows) {
    const int64_t mis = int64_t(reinterpret_cast<uintptr_t>(rows[0]) & 63);
    for (int r = 1; r < NR; ++r)
        if (int64_t(reinterpret_cast<uintptr_t>(rows[r]) & 63) != mis) return -1;
    return mis % 2 == 0 ? mis : -1;
}
#endif

// Few-row form: NR weight rows are streamed once per group of MR rows of x, without packing; the NR rows stay in
// L1 while every row group of x passes by them. y[m, n .. n+NR) for m in [0, MR).
// ahead: bytes from a row to the one whose data is prefetched while it is read (0: none), as in tile_int8.
// BF16 rows are read a whole 64-byte line (32 values) at a time; the two halves are added to the accumulators one
// after the other, so the sums are those of the 16-value steps below (the same bits whatever path or `ahead`).
template <int MR, int NR>
void tile(const float* x, int64_t ldx, const char* const* rows, DType dt, int64_t K, float* y, int64_t ldy, bool acc,
          int64_t ahead = 0) {
#if HALO_KERNELS_AVX512
    __m512 a[NR][MR];
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) a[r][m] = _mm512_setzero_ps();
    int64_t k0 = 0;
    if (dt == DType::bf16 && K >= 32) {
        __m512 xl[MR], xh[MR];
        auto load_x = [&] {
            for (int m = 0; m < MR; ++m) {
                xl[m] = _mm512_loadu_ps(x + m * ldx + k0);
                xh[m] = _mm512_loadu_ps(x + m * ldx + k0 + 16);
            }
        };
        const int64_t mis = shared_misalignment<NR>(rows);
        if (mis >= 0) {
            // Whole aligned lines, each loaded one step before its last use, so the next line of every row is on its
            // way while this one is summed (see matvec for what it gained). Each step's 32 weights are taken from two
            // lines with vpermt2w: the values a load at the row's own address would give (rows that start mis bytes
            // past a line, as a safetensors file mapped in place gives them; with mis = 0 the first line as it is).
            // No line read lies past the row: the next line is loaded only while it holds bytes of the row.
            alignas(64) static constexpr uint16_t kIota[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                               11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                               22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
            const __m512i idx = _mm512_add_epi16(_mm512_load_si512(kIota), _mm512_set1_epi16(int16_t(mis / 2)));
            __m512i prev[NR];
            for (int r = 0; r < NR; ++r) prev[r] = _mm512_load_si512(rows[r] - mis);
            auto step = [&](bool load_next) {
                load_x();
                for (int r = 0; r < NR; ++r) {
                    if (ahead) _mm_prefetch(rows[r] + k0 * 2 + ahead, _MM_HINT_T0);
                    const __m512i next = load_next ? _mm512_load_si512(rows[r] - mis + k0 * 2 + 64) : prev[r];
                    fma_bf16_line<MR>(_mm512_permutex2var_epi16(prev[r], idx, next), xl, xh, a[r]);
                    prev[r] = next;
                }
            };
            for (; k0 + 64 <= K; k0 += 32) step(true);
            if (k0 + 32 <= K) {
                step(mis > 0);
                k0 += 32;
            }
        } else {
            for (; k0 + 32 <= K; k0 += 32) {
                load_x();
                for (int r = 0; r < NR; ++r) {
                    const char* p = rows[r] + k0 * 2;
                    if (ahead) _mm_prefetch(p + ahead, _MM_HINT_T0);
                    fma_bf16_line<MR>(_mm512_loadu_si512(p), xl, xh, a[r]);
                }
            }
        }
    }
    for (int64_t k = k0; k < K; k += 16) {
        const __mmask16 mk = k + 16 <= K ? __mmask16(0xffff) : __mmask16((1u << (K - k)) - 1);
        __m512 xv[MR];
        for (int m = 0; m < MR; ++m) xv[m] = _mm512_maskz_loadu_ps(mk, x + m * ldx + k);
        for (int r = 0; r < NR; ++r) {
            const __m512 wv = load16(rows[r], dt, k, mk);
            for (int m = 0; m < MR; ++m) a[r][m] = _mm512_fmadd_ps(wv, xv[m], a[r][m]);
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) {
            const float v = _mm512_reduce_add_ps(a[r][m]);
            y[m * ldy + r] = acc ? y[m * ldy + r] + v : v;
        }
#else
    float buf[256];
    float s[NR][MR] = {};
    const size_t es = ops::dtype_size(dt);
    for (int64_t k0 = 0; k0 < K; k0 += 256) {
        const int64_t kn = std::min<int64_t>(256, K - k0);
        for (int r = 0; r < NR; ++r) {
            to_f32(rows[r] + size_t(k0) * es, dt, buf, kn);
            for (int m = 0; m < MR; ++m) {
                float part = 0;
                for (int64_t k = 0; k < kn; ++k) part += buf[k] * x[m * ldx + k0 + k];
                s[r][m] += part;
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) y[m * ldy + r] = acc ? y[m * ldy + r] + s[r][m] : s[r][m];
#endif
}

template <int NR>
void tile_rows(int mr, const float* x, int64_t ldx, const char* const* rows, DType dt, int64_t K, float* y, int64_t ldy,
               bool acc, int64_t ahead = 0) {
    switch (mr) {
    case 1: tile<1, NR>(x, ldx, rows, dt, K, y, ldy, acc, ahead); break;
    case 2: tile<2, NR>(x, ldx, rows, dt, K, y, ldy, acc, ahead); break;
    case 3: tile<3, NR>(x, ldx, rows, dt, K, y, ldy, acc, ahead); break;
    default: tile<4, NR>(x, ldx, rows, dt, K, y, ldy, acc, ahead); break;
    }
}

#if HALO_KERNELS_AVX512
#define HALO_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,avx2")))

// QuantDot::int8: x rows quantized for integer dot products against q4 / q8 rows with BF16 scales, group 32.
// The weights are read in 64-byte chunks: 128 q4 values (4 groups) or 64 q8 values (2 groups). Per chunk and row of
// x: its int8 values in the order the weight bytes hold theirs (q4: each group's even elements, then its odd ones,
// meeting the low and the high nibbles), the starting int32 lanes that remove the weights' offset (-8 or -128 times
// the group's sum of x, in the first lane of each group's lanes), and x's scale per lane.
struct Int8Rows {
    int8_t* lo = nullptr;   // [M][K / 2] (q4, even elements) or [M][K] (q8)
    int8_t* hi = nullptr;   // [M][K / 2] (q4, odd elements)
    int32_t* init = nullptr;  // [M][chunks][16]
    float* sx = nullptr;      // [M][chunks][16]
    int64_t chunks = 0;
};

// Floats of scratch prepare_int8 needs for M rows of K.
inline int64_t int8_rows_floats(int64_t M, int64_t K) { return M * (K / 4 + 2 * (K / 64) * 16) + 64; }

HALO_VNNI_TARGET
Int8Rows prepare_int8(int64_t M, const float* x, int64_t ldx, int64_t K, bool q4, float* scratch) {
    Int8Rows r;
    r.chunks = q4 ? K / 128 : K / 64;
    float* p = scratch;
    r.init = reinterpret_cast<int32_t*>(p);
    p += M * r.chunks * 16;
    r.sx = p;
    p += M * r.chunks * 16;
    r.lo = reinterpret_cast<int8_t*>(p);
    r.hi = r.lo + M * (K / 2);
    const int group_lanes = q4 ? 4 : 8;  // int32 lanes per group in a chunk
    for (int64_t m = 0; m < M; ++m) {
        const float* xr = x + m * ldx;
        int32_t* init = r.init + m * r.chunks * 16;
        float* sx = r.sx + m * r.chunks * 16;
        for (int64_t g = 0; g < K / 32; ++g) {
            const __m512 a = _mm512_loadu_ps(xr + g * 32), b = _mm512_loadu_ps(xr + g * 32 + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
            const float scale = amax / 127.0f;
            const __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
            const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, inv));
            const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
            alignas(64) int32_t q[32];
            _mm512_store_si512(q, qa);
            _mm512_store_si512(q + 16, qb);
            if (q4) {
                for (int j = 0; j < 16; ++j) {
                    r.lo[m * (K / 2) + g * 16 + j] = int8_t(q[2 * j]);
                    r.hi[m * (K / 2) + g * 16 + j] = int8_t(q[2 * j + 1]);
                }
            } else {
                for (int j = 0; j < 32; ++j) r.lo[m * K + g * 32 + j] = int8_t(q[j]);
            }
            const int64_t chunk = q4 ? g / 4 : g / 2, first = (q4 ? g % 4 : g % 2) * group_lanes;
            for (int l = 0; l < group_lanes; ++l) {
                init[chunk * 16 + first + l] = l == 0 ? (q4 ? -8 : -128) * sum : 0;
                sx[chunk * 16 + first + l] = scale;
            }
        }
    }
    return r;
}

// y[m, n .. n+NR) of MR rows of x prepared by prepare_int8, against NR q4 / q8 rows with BF16 scales, group 32.
// ahead: bytes from a row to the one whose data is prefetched while it is read (the next tiles' rows: a tile's rows
// are short streams, too short for the hardware prefetcher to keep enough misses in flight).
template <int MR, int NR>
HALO_VNNI_TARGET void tile_int8(const Int8Rows& xr, int64_t K, const char* const* rows, const uint16_t* const* scales,
                                bool q4, float* y, int64_t ldy, bool acc, int64_t ahead) {
    __m512 f[NR][MR];
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) f[r][m] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(15);
    // BF16 scale words broadcast to every 128-bit lane become f32 lanes: q4 lane l takes word l / 4 (one group per
    // 128 bits), q8 lane l takes word l / 8. A control dword (0x80 zeroes a byte) puts word w in the upper half.
    const __m512i ctrl = q4 ? _mm512_setr_epi32(0x01008080, 0x01008080, 0x01008080, 0x01008080, 0x03028080, 0x03028080,
                                                0x03028080, 0x03028080, 0x05048080, 0x05048080, 0x05048080, 0x05048080,
                                                0x07068080, 0x07068080, 0x07068080, 0x07068080)
                            : _mm512_setr_epi32(0x01008080, 0x01008080, 0x01008080, 0x01008080, 0x01008080, 0x01008080,
                                                0x01008080, 0x01008080, 0x03028080, 0x03028080, 0x03028080, 0x03028080,
                                                0x03028080, 0x03028080, 0x03028080, 0x03028080);
    const int64_t half = K / 2;
    for (int64_t c = 0; c < xr.chunks; ++c) {
        for (int r = 0; r < NR; ++r) {
            _mm_prefetch(rows[r] + c * 64 + ahead, _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512(rows[r] + c * 64);
            __m512i sbits;
            if (q4) {
                uint64_t s4;
                std::memcpy(&s4, scales[r] + c * 4, 8);
                sbits = _mm512_shuffle_epi8(_mm512_set1_epi64(int64_t(s4)), ctrl);
            } else {
                uint32_t s2;
                std::memcpy(&s2, scales[r] + c * 2, 4);
                sbits = _mm512_shuffle_epi8(_mm512_set1_epi32(int32_t(s2)), ctrl);
            }
            const __m512 sw = _mm512_castsi512_ps(sbits);
            for (int m = 0; m < MR; ++m) {
                __m512i a = _mm512_loadu_si512(xr.init + (m * xr.chunks + c) * 16);
                if (q4) {
                    a = _mm512_dpbusd_epi32(a, _mm512_and_si512(v, low4), _mm512_loadu_si512(xr.lo + m * half + c * 64));
                    a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                            _mm512_loadu_si512(xr.hi + m * half + c * 64));
                } else {
                    a = _mm512_dpbusd_epi32(a, v, _mm512_loadu_si512(xr.lo + m * K + c * 64));
                }
                const __m512 s = _mm512_mul_ps(sw, _mm512_loadu_ps(xr.sx + (m * xr.chunks + c) * 16));
                f[r][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), s, f[r][m]);
            }
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int m = 0; m < MR; ++m) {
            const float v = _mm512_reduce_add_ps(f[r][m]);
            y[m * ldy + r] = acc ? y[m * ldy + r] + v : v;
        }
}

template <int NR>
HALO_VNNI_TARGET void tile_int8_rows(int mr, const Int8Rows& xr, int64_t K, const char* const* rows,
                                     const uint16_t* const* scales, bool q4, float* y, int64_t ldy, bool acc,
                                     int64_t ahead) {
    switch (mr) {
    case 1: tile_int8<1, NR>(xr, K, rows, scales, q4, y, ldy, acc, ahead); break;
    case 2: tile_int8<2, NR>(xr, K, rows, scales, q4, y, ldy, acc, ahead); break;
    case 3: tile_int8<3, NR>(xr, K, rows, scales, q4, y, ldy, acc, ahead); break;
    default: tile_int8<4, NR>(xr, K, rows, scales, q4, y, ldy, acc, ahead); break;
    }
}

// matmul_quant's QuantDot::int8 form; x rows in groups of four, each prepared once per call.
HALO_VNNI_TARGET void matmul_int8(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1,
                                  float* y, int64_t ldy, bool acc, float* pack) {
    const int64_t K = w.cols;
    const bool q4 = w.dtype == DType::q4;
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
        const int mr = int(std::min<int64_t>(4, M - m0));
        const Int8Rows xr = prepare_int8(mr, x + m0 * ldx, ldx, K, q4, pack);
        for (int64_t n = n0; n < n1; n += 4) {
            const int nr = int(std::min<int64_t>(4, n1 - n));
            const char* rows[4] = {};
            const uint16_t* scales[4] = {};
            for (int r = 0; r < nr; ++r) {
                rows[r] = stored_row(w, n + r);
                scales[r] = reinterpret_cast<const uint16_t*>(scale_row(w, n + r));
            }
            float* ym = y + m0 * ldy + n;
            const int64_t ahead = int64_t(kPrefetchRows * w.stored_row_bytes());
            if (nr == 4)
                tile_int8_rows<4>(mr, xr, K, rows, scales, q4, ym, ldy, acc, ahead);
            else
                for (int r = 0; r < nr; ++r)
                    tile_int8_rows<1>(mr, xr, K, rows + r, scales + r, q4, ym + r, ldy, acc, ahead);
        }
    }
}
#endif

// Any number of rows of x against a quantized W (row-major), in one summation order per element whatever M is:
// the fused form (AVX-512, blocks of 32 under one scale), or else rows dequantized exactly four at a time and summed
// in the few-row order. pack: kPackBufferFloats floats of scratch.
void matmul_quant(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                  int64_t ldy, bool acc, float* pack) {
    const int64_t K = w.cols;
#if HALO_KERNELS_AVX512
    if (g_quant_dot == QuantDot::int8 && w.group == 32 && w.scale_dtype == DType::bf16 &&
        K % (w.dtype == DType::q4 ? 128 : 64) == 0 && int8_rows_floats(4, K) <= kPackBufferFloats) {
        matmul_int8(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
        return;
    }
    if (K % 32 == 0 && w.group % 32 == 0 && 4 * (K / 32) <= kPackBufferFloats) {
        for (int64_t n = n0; n < n1; n += 4) {
            const int nr = int(std::min<int64_t>(4, n1 - n));
            const char* rows[4] = {};
            const float* scales[4] = {};
            for (int r = 0; r < nr; ++r) {  // one scale per 32-element block
                rows[r] = stored_row(w, n + r);
                const char* srow = scale_row(w, n + r);
                float* s = pack + r * (K / 32);
                const int64_t per_group = w.group / 32;
                for (int64_t g = 0, b = 0; b < K / 32; ++g) {
                    const float v = scale_at(srow, w.scale_dtype, g);
                    for (int64_t i = 0; i < per_group && b < K / 32; ++i) s[b++] = v;
                }
                scales[r] = s;
            }
            const int64_t ahead = M <= 4 ? int64_t(kPrefetchRows * w.stored_row_bytes()) : 0;
            for (int64_t m0 = 0; m0 < M; m0 += 4) {
                const int mr = int(std::min<int64_t>(4, M - m0));
                if (nr == 4)
                    tile_q_rows<4>(mr, x + m0 * ldx, ldx, rows, scales, w.dtype, K, y + m0 * ldy + n, ldy, acc, ahead);
                else
                    for (int r = 0; r < nr; ++r)
                        tile_q_rows<1>(mr, x + m0 * ldx, ldx, rows + r, scales + r, w.dtype, K, y + m0 * ldy + n + r, ldy,
                                       acc, ahead);
            }
        }
        return;
    }
#endif
    const int64_t per = std::max<int64_t>(1, std::min<int64_t>(4, kPackBufferFloats / std::max<int64_t>(K, 1)));
    for (int64_t n = n0; n < n1; n += per) {
        const int nr = int(std::min<int64_t>(per, n1 - n));
        const char* rows[4] = {};
        for (int r = 0; r < nr; ++r) {
            stored_to_f32(w, n + r, 0, K, pack + r * K);
            rows[r] = reinterpret_cast<const char*>(pack + r * K);
        }
        for (int64_t m0 = 0; m0 < M; m0 += 4) {
            const int mr = int(std::min<int64_t>(4, M - m0));
            if (nr == 4)
                tile_rows<4>(mr, x + m0 * ldx, ldx, rows, DType::f32, K, y + m0 * ldy + n, ldy, acc);
            else
                for (int r = 0; r < nr; ++r)
                    tile_rows<1>(mr, x + m0 * ldx, ldx, rows + r, DType::f32, K, y + m0 * ldy + n + r, ldy, acc);
        }
    }
}

void matvec(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y, int64_t ldy,
            bool acc) {
    const size_t row_bytes = size_t(w.ld) * ops::dtype_size(w.dtype);
    const char* base = static_cast<const char*>(w.data);
    int64_t n = n0;
    // One row of x against BF16 (decode): eight weight rows per tile, so more lines are loading at once. On one Zen 5
    // core, four rows loaded at their own addresses read DRAM at about 0.8 of a plain streaming loop; eight rows read
    // as aligned lines one step ahead (tile), about 0.95; either change alone gained little. Each output's sum is the
    // same whatever the tile's width.
    if (M == 1 && w.dtype == DType::bf16)
        for (; n + 8 <= n1; n += 8) {
            const char* rows[8];
            for (int r = 0; r < 8; ++r) rows[r] = base + size_t(n + r) * row_bytes;
            // Prefetch on past this range while the matrix goes on: a MoE decode step reads an expert in slices
            // of a few hundred rows, and whichever thread reads the next slice finds it on its way.
            const int64_t ahead = n + 8 + kPrefetchRows <= w.rows ? kPrefetchRows * int64_t(row_bytes) : 0;
            tile<1, 8>(x, ldx, rows, w.dtype, w.cols, y + n, ldy, acc, ahead);
        }
    for (; n + 4 <= n1; n += 4) {
        const char* rows[4] = {base + size_t(n) * row_bytes, base + size_t(n + 1) * row_bytes,
                               base + size_t(n + 2) * row_bytes, base + size_t(n + 3) * row_bytes};
        // With one group of x rows the weights pass once: prefetch the rows two tiles on (not past the matrix).
        const int64_t ahead = M <= 4 && n + 4 + kPrefetchRows <= w.rows ? kPrefetchRows * int64_t(row_bytes) : 0;
        for (int64_t m0 = 0; m0 < M; m0 += 4)
            tile_rows<4>(int(std::min<int64_t>(4, M - m0)), x + m0 * ldx, ldx, rows, w.dtype, w.cols, y + m0 * ldy + n, ldy,
                         acc, ahead);
    }
    for (; n < n1; ++n) {
        const char* rows[1] = {base + size_t(n) * row_bytes};
        for (int64_t m0 = 0; m0 < M; m0 += 4)
            tile_rows<1>(int(std::min<int64_t>(4, M - m0)), x + m0 * ldx, ldx, rows, w.dtype, w.cols, y + m0 * ldy + n, ldy, acc);
    }
}

#if HALO_KERNELS_AVX512
// out[c] = column c of the 16 x 16 block whose rows are r[0..16).
inline void transpose16(const __m512* r, __m512* out) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within each 128-bit lane
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    // u[4g + j], lane l: column 4l + j of rows 4g .. 4g+3.
    for (int g = 0; g < 4; ++g) {
        const __m512 *a = t + 4 * g, *b = t + 4 * g + 2;
        u[4 * g + 0] = _mm512_shuffle_ps(a[0], b[0], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(a[0], b[0], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(a[1], b[1], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(a[1], b[1], 0xEE);
    }
    // Column 4l + j gathers lane l of u[j], u[4 + j], u[8 + j], u[12 + j].
    for (int j = 0; j < 4; ++j) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), w0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        const __m512 v1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        out[j] = _mm512_shuffle_f32x4(v0, v1, 0x88);
        out[8 + j] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
        out[4 + j] = _mm512_shuffle_f32x4(w0, w1, 0x88);
        out[12 + j] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
    }
}
#endif

// A panel of W, as pack_panel reads it: rows [n0, n0 + nr), elements [k0, k0 + kb).
struct PanelRef {
    int64_t n0 = 0, nr = 0, k0 = 0, kb = 0;
};

// Asks for row j of panel `next` (its bytes of W, not its scales) to be brought into L2 while a panel is packed:
// when few rows of x share a panel (a MoE expert's prompt rows), W streams from DRAM and its 16 or 32 row pieces
// are too short for the hardware prefetcher to keep enough misses in flight.
inline void prefetch_panel_row(const Matrix& w, const PanelRef& next, int64_t j) {
    if (w.kn || j >= next.nr) return;
    const char* row = stored_row(w, next.n0 + j);
    const uint64_t b0 = ops::row_bytes(w.dtype, next.k0), b1 = ops::row_bytes(w.dtype, next.k0 + next.kb);
    for (uint64_t b = b0 & ~uint64_t(63); b < b1; b += 64) __builtin_prefetch(row + b, 0, 2);  // to L2
}

// The (panel, k block) pairs of outputs [n0, n1) and K, in the order the packed products take them: panels outermost
// (each weight row one stream from start to end: few rows of x, all of which stay in L2) or k blocks outermost (the
// [M, kKb] slice of x stays in L2 while every panel passes by it). Calls f(p, next) for each, next being the pair
// kPanelsAhead on (nr = 0 past the end), whose weights f prefetches. Each y[m, n] is the sum of its k blocks' sums,
// added in k order, in either order.
template <class F>
void for_each_panel(int64_t n0, int64_t n1, int64_t K, bool panels_outer, F&& f) {
    const int64_t k_blocks = (K + kKb - 1) / kKb, panels = (n1 - n0 + kNr - 1) / kNr;
    auto at = [&](int64_t i) {
        const int64_t pi = panels_outer ? i / k_blocks : i % panels, ki = panels_outer ? i % k_blocks : i / panels;
        const int64_t p0 = n0 + pi * kNr, k0 = ki * kKb;
        return PanelRef{p0, std::min(kNr, n1 - p0), k0, std::min(kKb, K - k0)};
    };
    const int64_t total = k_blocks * panels;
    for (int64_t i = 0; i < total; ++i) f(at(i), i + kPanelsAhead < total ? at(i + kPanelsAhead) : PanelRef{});
}

// Packs W[n0 .. n0+nr) x [k0 .. k0+kb) as f32 into pack[k][kNr], zero-padding columns nr..kNr-1; prefetches the
// panel `next` (nr = 0: none; AVX-512 form only).
void pack_panel(const Matrix& w, int64_t n0, int64_t nr, int64_t k0, int64_t kb, float* pack, const PanelRef& next = {}) {
    if (w.kn) {  // stored [K][N]: rows of the panel are contiguous
        for (int64_t k = 0; k < kb; ++k) {
            stored_to_f32(w, k0 + k, n0, nr, pack + k * kNr);
            for (int64_t j = nr; j < kNr; ++j) pack[k * kNr + j] = 0.0f;
        }
        return;
    }
#if HALO_KERNELS_AVX512
    // Sixteen rows at a time: each converted to f32 (16-column multiples, zero-padded), then 16 x 16 blocks
    // transposed in registers, one whole 64-byte store per k. A scalar store per element was the panel's cost when
    // few rows of x share it (a MoE expert's prompt rows).
    alignas(64) float rows16[16][kKb];
    const int64_t kb16 = (kb + 15) / 16 * 16;
    for (int64_t jb = 0; jb < kNr; jb += 16) {
        if (jb >= nr) {
            for (int64_t k = 0; k < kb; ++k) _mm512_store_ps(pack + k * kNr + jb, _mm512_setzero_ps());
            continue;
        }
        for (int64_t j = 0; j < 16; ++j) {
            prefetch_panel_row(w, next, jb + j);
            if (jb + j < nr) {
                stored_to_f32(w, n0 + jb + j, k0, kb, rows16[j]);
                std::fill(rows16[j] + kb, rows16[j] + kb16, 0.0f);
            } else {
                std::fill(rows16[j], rows16[j] + kb16, 0.0f);
            }
        }
        for (int64_t kk = 0; kk < kb16; kk += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; ++i) r[i] = _mm512_load_ps(rows16[i] + kk);
            transpose16(r, t);
            for (int c = 0; c < 16 && kk + c < kb; ++c) _mm512_store_ps(pack + (kk + c) * kNr + jb, t[c]);
        }
    }
#else
    float row[kKb];
    for (int64_t j = 0; j < kNr; ++j) {
        if (j < nr) {
            stored_to_f32(w, n0 + j, k0, kb, row);
            for (int64_t k = 0; k < kb; ++k) pack[k * kNr + j] = row[k];
        } else {
            for (int64_t k = 0; k < kb; ++k) pack[k * kNr + j] = 0.0f;
        }
    }
#endif
}

#if HALO_KERNELS_AVX512
// out[0 .. nr) (+)= the first nr of the 32 values v0, v1 (a row of a panel's product).
inline void store_panel_row(__m512 v0, __m512 v1, float* out, int64_t nr, bool acc) {
    const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? __mmask16(0xffff) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1);
    if (acc) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, out));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, out + 16));
    }
    _mm512_mask_storeu_ps(out, m0, v0);
    _mm512_mask_storeu_ps(out + 16, m1, v1);
}
#endif

// C[MR, nr] (+)= A[MR, kb] * P[kb, kNr] for a packed panel P.
template <int MR>
void micro(const float* a, int64_t lda, const float* p, int64_t kb, float* c, int64_t ldc, int64_t nr, bool acc) {
#if HALO_KERNELS_AVX512
    __m512 c0[MR], c1[MR];
    for (int m = 0; m < MR; ++m) c0[m] = c1[m] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kb; ++k) {
        const __m512 b0 = _mm512_load_ps(p + k * kNr), b1 = _mm512_load_ps(p + k * kNr + 16);
        for (int m = 0; m < MR; ++m) {
            const __m512 av = _mm512_set1_ps(a[m * lda + k]);
            c0[m] = _mm512_fmadd_ps(av, b0, c0[m]);
            c1[m] = _mm512_fmadd_ps(av, b1, c1[m]);
        }
    }
    for (int m = 0; m < MR; ++m) store_panel_row(c0[m], c1[m], c + m * ldc, nr, acc);
#else
    float t[MR][kNr] = {};
    for (int64_t k = 0; k < kb; ++k)
        for (int m = 0; m < MR; ++m) {
            const float av = a[m * lda + k];
            for (int64_t j = 0; j < kNr; ++j) t[m][j] += av * p[k * kNr + j];
        }
    for (int m = 0; m < MR; ++m)
        for (int64_t j = 0; j < nr; ++j) c[m * ldc + j] = acc ? c[m * ldc + j] + t[m][j] : t[m][j];
#endif
}

void micro_any(int mr, const float* a, int64_t lda, const float* p, int64_t kb, float* c, int64_t ldc, int64_t nr, bool acc) {
    switch (mr) {
    case 1: micro<1>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 2: micro<2>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 3: micro<3>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 4: micro<4>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 5: micro<5>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 6: micro<6>(a, lda, p, kb, c, ldc, nr, acc); break;
    case 7: micro<7>(a, lda, p, kb, c, ldc, nr, acc); break;
    default: micro<8>(a, lda, p, kb, c, ldc, nr, acc); break;
    }
}

#if HALO_KERNELS_BF16
// The packed product with native BF16 products, for BF16 weights. Each x is split into three BF16 values,
// hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi - mid), which add up to x within about 2^-24 of it, and each
// pair of weights meets all three. x alone in BF16 (as llama.cpp rounds it) is off by up to 2^-9; two parts leave
// 2^-17, which a model's layers amplify into logits 20 to 50 times further from a float64 reference than the F32
// kernels'. Three parts keep them as close as the F32 kernels'.
// vdpbf16ps panel: pairs of BF16 weights (elements 2p, 2p + 1 of a row) as 32-bit words, [pairs][kNr], the layout
// a broadcast pair of x meets. x: the parts' pairs as 32-bit words, part i at xp + i * part, row m at + m * ld.
constexpr int kXParts = 3;
constexpr int64_t kPairBlock = kKb / 2;  // pairs per k block
// Rows of x whose parts are converted per k block.
constexpr int64_t kBf16XRows = 128;
static_assert(kPairBlock * kNr + kXParts * kBf16XRows * kPairBlock <= kPackBufferFloats);

// 16 BF16 words as f32.
inline __m512 bf16_words_to_f32(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// x[m][k0 .. k0 + kb) as the parts' pairs (odd kb: the last pair's upper half is zero), part i at xp + i * part.
// Row layout (vdpbf16ps): row m at + m * ld, pair q at + q. B layout (AMX, b_layout): rows in blocks of 16, block
// m / 16 at + (m / 16) * 16 * ld, pair q at + q * 16, row m % 16 at + m % 16; only the pairs' words are written, so
// the region must be zero beforehand for the tiles' padding.
void split_x_bf16(int64_t M, const float* x, int64_t ldx, int64_t k0, int64_t kb, uint32_t* xp, int64_t ld, int64_t part,
                  bool b_layout = false) {
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(16));
    for (int64_t m = 0; m < M; ++m) {
        const float* xr = x + m * ldx + k0;
        uint32_t* row = xp + (b_layout ? (m / 16) * 16 * ld + m % 16 : m * ld);
        for (int64_t k = 0; k < kb; k += 32) {
            const int64_t left = kb - k;
            const __mmask16 m0 = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? __mmask16(0xffff) : left <= 16 ? __mmask16(0) : __mmask16((1u << (left - 16)) - 1);
            const __mmask16 words = left >= 32 ? __mmask16(0xffff) : __mmask16((1u << ((left + 1) / 2)) - 1);
            __m512 a = _mm512_maskz_loadu_ps(m0, xr + k), b = _mm512_maskz_loadu_ps(m1, xr + k + 16);
            for (int i = 0; i < kXParts; ++i) {  // each part the BF16 rounding of what the ones before leave
                const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // a's 16 values in the lower half
                if (b_layout)
                    _mm512_mask_i32scatter_epi32(row + i * part + (k / 2) * 16, words, index, h, 4);
                else
                    _mm512_mask_storeu_epi32(row + i * part + k / 2, words, h);
                a = _mm512_sub_ps(a, bf16_words_to_f32(_mm512_castsi512_si256(h)));
                b = _mm512_sub_ps(b, bf16_words_to_f32(_mm512_extracti64x4_epi64(h, 1)));
            }
        }
    }
}

#if HALO_KERNELS_AMX
// The packed product on AMX tiles (Sapphire Rapids and later Xeons), for BF16 weights. The weights are the A operand
// (16 rows of W by 32 of its elements, read in place: row-major W is A's layout, so nothing is packed) and x's three
// parts the B operand (pairs of k by 16 rows of x), so a tile of C holds 16 outputs by 16 rows of x. Tiles: 0 and 1
// C for two groups of 16 outputs, 2 and 3 their weights, 4 to 6 x's parts.
constexpr int64_t kAmxRows = 16;
static_assert(kXParts == 3 && kPairBlock % 16 == 0);

struct TileConfig {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Loads the tile shapes on the calling thread (AMX state is per thread). The tile instructions are asm statements
// that name only their addresses: the barrier keeps the compiler from dropping stores they read (the config here,
// x's parts and padded weights elsewhere) as dead.
inline void amx_configure() {
    alignas(64) TileConfig cfg;
    for (int t = 0; t < 7; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    asm volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
}

// The weights of one A tile: rows [n, n + 16) of W from element k, 32 elements each, read in place when all of them
// lie inside rows [n, n_end) and the k block, else copied into `pad` with zeros around them.
inline const void* weight_tile(const Matrix& w, int64_t n, int64_t n_end, int64_t k, int64_t k_end, uint16_t* pad) {
    if (n + 16 <= n_end && k + 32 <= k_end) return stored_row(w, n) + k * 2;
    for (int64_t r = 0; r < 16; ++r) {
        const int64_t valid = n + r < n_end ? std::max<int64_t>(0, std::min<int64_t>(32, k_end - k)) : 0;
        const uint16_t* src = valid ? reinterpret_cast<const uint16_t*>(stored_row(w, n + r)) + k : nullptr;
        for (int64_t j = 0; j < 32; ++j) pad[r * 32 + j] = j < valid ? src[j] : 0;
    }
    asm volatile("" ::: "memory");
    return pad;
}

// y[m0 .. m0 + mr, n .. n + nr) (+)= W rows [n, n + nr) times rows [m0, m0 + 16) of x over elements [k0, k0 + kb):
// per 16 pairs, the parts in order. xb: the rows' B-layout parts at the block's first pair.
void micro_amx(const Matrix& w, int64_t n, int64_t nr, int64_t k0, int64_t kb, const uint32_t* xb, int64_t ld,
               int64_t part, float* y, int64_t ldy, int64_t mr, bool acc) {
    alignas(64) float c[2][16 * 16];
    alignas(64) uint16_t pad[2][16 * 32];
    const int64_t row_bytes = int64_t(w.stored_row_bytes());
    _tile_zero(0);
    _tile_zero(1);
    asm volatile("" ::: "memory");
    for (int64_t k = 0; k < kb; k += 32) {
        const void* a0 = weight_tile(w, n, n + nr, k0 + k, k0 + kb, pad[0]);
        const bool two = nr > 16;
        const void* a1 = two ? weight_tile(w, n + 16, n + nr, k0 + k, k0 + kb, pad[1]) : nullptr;
        const int64_t s0 = a0 == pad[0] ? 64 : row_bytes, s1 = a1 == pad[1] ? 64 : row_bytes;
        const uint32_t* b = xb + (k / 2) * 16;
        _tile_loadd(4, b, 64);
        _tile_loadd(5, b + part, 64);
        _tile_loadd(6, b + 2 * part, 64);
        _tile_loadd(2, a0, s0);
        _tile_dpbf16ps(0, 2, 4);
        _tile_dpbf16ps(0, 2, 5);
        _tile_dpbf16ps(0, 2, 6);
        if (two) {
            _tile_loadd(3, a1, s1);
            _tile_dpbf16ps(1, 3, 4);
            _tile_dpbf16ps(1, 3, 5);
            _tile_dpbf16ps(1, 3, 6);
        }
    }
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    // c[g][r][m]: output n + 16 g + r, row m of x; transposed, out[m] is row m's 16 outputs.
    for (int g = 0; g < (nr > 16 ? 2 : 1); ++g) {
        __m512 r16[16], t[16];
        for (int r = 0; r < 16; ++r) r16[r] = _mm512_load_ps(c[g] + r * 16);
        transpose16(r16, t);
        const int64_t cols = std::min<int64_t>(16, nr - 16 * g);
        for (int64_t m = 0; m < mr; ++m) store_panel_row(t[m], _mm512_setzero_ps(), y + m * ldy + n + 16 * g, cols, acc);
    }
}

// matmul_packed for BF16 row-major W on AMX. Each y[m, n]: its k blocks' sums (per 32 elements, the parts in order),
// added in k order, whatever M or the loop order. Rows of x in blocks of kBf16XRows, their parts converted once per
// k block; few rows (one block whose whole x fits the scratch) take the groups of 32 outputs outermost, so each
// weight row is one stream. x zero-padded to whole tiles of rows and of pairs.
void matmul_packed_amx(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                       int64_t ldy, bool acc, float* scratch) {
    static_assert(kBf16XRows % kAmxRows == 0);
    amx_configure();
    // Tiles released on the way out: a thread holding tile state has it saved and restored at every context switch.
    struct Release {
        ~Release() { _tile_release(); }
    } release;
    auto pad_rows = [](int64_t v) { return (v + kAmxRows - 1) / kAmxRows * kAmxRows; };
    const int64_t K = w.cols;
    uint32_t* xbuf = reinterpret_cast<uint32_t*>(scratch);
    const int64_t all_pairs = (K + kKb - 1) / kKb * kPairBlock;
    // The 16-row tiles of rows [0, mn) of x (B-layout parts at xb, this k block's first pair) times panel p.
    auto run = [&](const PanelRef& p, const PanelRef& next, const uint32_t* xb, int64_t ld, int64_t part, int64_t mn,
                   float* yb) {
        for (int64_t j = 0; j < next.nr; ++j) prefetch_panel_row(w, next, j);
        for (int64_t m0 = 0; m0 < mn; m0 += kAmxRows)
            micro_amx(w, p.n0, p.nr, p.k0, p.kb, xb + m0 * ld, ld, part, yb + m0 * ldy, ldy, std::min(kAmxRows, mn - m0),
                      acc || p.k0 > 0);
    };
    if (pad_rows(M) * all_pairs <= kBf16XRows * kPairBlock) {  // few rows: all of x split, panels outermost
        const int64_t part = pad_rows(M) * all_pairs;
        std::fill(xbuf, xbuf + kXParts * part, 0u);
        for (int64_t k0 = 0; k0 < K; k0 += kKb)
            split_x_bf16(M, x, ldx, k0, std::min(kKb, K - k0), xbuf + k0 / 2 * 16, all_pairs, part, true);
        for_each_panel(n0, n1, K, true, [&](const PanelRef& p, const PanelRef& next) {
            run(p, next, xbuf + p.k0 / 2 * 16, all_pairs, part, M, y);
        });
        return;
    }
    for (int64_t mb = 0; mb < M; mb += kBf16XRows) {  // k blocks outermost, x split at each one's first panel
        const int64_t mn = std::min(kBf16XRows, M - mb), part = pad_rows(mn) * kPairBlock;
        for_each_panel(n0, n1, K, false, [&](const PanelRef& p, const PanelRef& next) {
            if (p.n0 == n0) {
                std::fill(xbuf, xbuf + kXParts * part, 0u);
                split_x_bf16(mn, x + mb * ldx, ldx, p.k0, p.kb, xbuf, kPairBlock, part, true);
            }
            run(p, next, xbuf, kPairBlock, part, mn, y + mb * ldy);
        });
    }
}
#else
// The vdpbf16ps product. Panel p of W in the pair layout, its columns past p.nr zero.
void pack_panel_bf16(const Matrix& w, const PanelRef& p, uint32_t* pack, const PanelRef& next) {
    const int64_t pairs = (p.kb + 1) / 2;
    for (int64_t jb = 0; jb < kNr; jb += 16) {
        if (jb >= p.nr) {
            for (int64_t q = 0; q < pairs; ++q) _mm512_store_si512(pack + q * kNr + jb, _mm512_setzero_si512());
            continue;
        }
        const uint16_t* rows[16];
        for (int64_t j = 0; j < 16; ++j) {
            prefetch_panel_row(w, next, jb + j);
            rows[j] = jb + j < p.nr ? reinterpret_cast<const uint16_t*>(stored_row(w, p.n0 + jb + j)) + p.k0 : nullptr;
        }
        for (int64_t q0 = 0; q0 < pairs; q0 += 16) {  // 16 pairs (32 weights, one 64-byte line) of each row
            const int64_t left = p.kb - 2 * q0;
            const __mmask32 m = left >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << left) - 1);
            __m512 r[16], t[16];
            for (int j = 0; j < 16; ++j)
                r[j] = rows[j] ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, rows[j] + 2 * q0)) : _mm512_setzero_ps();
            transpose16(r, t);  // as 32-bit words: t[c] = pair q0 + c of the 16 rows
            for (int c = 0; c < 16 && q0 + c < pairs; ++c) _mm512_store_ps(reinterpret_cast<float*>(pack + (q0 + c) * kNr + jb), t[c]);
        }
    }
}

// C[MR, nr] (+)= A[MR, pairs] * P[pairs, kNr], A's pairs in parts; per pair, the parts in order.
template <int MR>
void micro_bf16(const uint32_t* xp, int64_t ld, int64_t part, const uint32_t* p, int64_t pairs, float* c, int64_t ldc,
                int64_t nr, bool acc) {
    __m512 c0[MR], c1[MR];
    for (int m = 0; m < MR; ++m) c0[m] = c1[m] = _mm512_setzero_ps();
    for (int64_t q = 0; q < pairs; ++q) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(p + q * kNr), b1 = (__m512bh)_mm512_load_si512(p + q * kNr + 16);
        for (int m = 0; m < MR; ++m)
            for (int i = 0; i < kXParts; ++i) {
                const __m512bh a = (__m512bh)_mm512_set1_epi32(int(xp[i * part + m * ld + q]));
                c0[m] = _mm512_dpbf16_ps(c0[m], a, b0);
                c1[m] = _mm512_dpbf16_ps(c1[m], a, b1);
            }
    }
    for (int m = 0; m < MR; ++m) store_panel_row(c0[m], c1[m], c + m * ldc, nr, acc);
}

void micro_bf16_any(int mr, const uint32_t* xp, int64_t ld, int64_t part, const uint32_t* p, int64_t pairs, float* c,
                    int64_t ldc, int64_t nr, bool acc) {
    switch (mr) {
    case 1: micro_bf16<1>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 2: micro_bf16<2>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 3: micro_bf16<3>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 4: micro_bf16<4>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 5: micro_bf16<5>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 6: micro_bf16<6>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    case 7: micro_bf16<7>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    default: micro_bf16<8>(xp, ld, part, p, pairs, c, ldc, nr, acc); break;
    }
}

// matmul_packed for BF16 row-major W by vdpbf16ps. Each y[m, n]: its k blocks' sums, added in k order, whatever M
// or the loop order. Rows of x in blocks of kBf16XRows, their parts converted once per k block; few rows (one block
// whose whole x fits the scratch) take the panels outermost, as matmul_packed does.
void matmul_packed_bf16(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                        int64_t ldy, bool acc, float* scratch) {
    const int64_t K = w.cols;
    uint32_t* panel = reinterpret_cast<uint32_t*>(scratch);
    uint32_t* xbuf = panel + kPairBlock * kNr;
    const int64_t all_pairs = (K + kKb - 1) / kKb * kPairBlock;
    // Rows [0, mn) of x (parts at xb, this k block's first pair) times panel p.
    auto run = [&](const PanelRef& p, const PanelRef& next, const uint32_t* xb, int64_t ld, int64_t part, int64_t mn,
                   float* yb) {
        pack_panel_bf16(w, p, panel, next);
        for (int64_t m0 = 0; m0 < mn; m0 += kMr)
            micro_bf16_any(int(std::min(kMr, mn - m0)), xb + m0 * ld, ld, part, panel, (p.kb + 1) / 2, yb + m0 * ldy + p.n0,
                           ldy, p.nr, acc || p.k0 > 0);
    };
    if (M * all_pairs <= kBf16XRows * kPairBlock) {  // few rows: all of x split, panels outermost
        const int64_t part = M * all_pairs;
        for (int64_t k0 = 0; k0 < K; k0 += kKb)
            split_x_bf16(M, x, ldx, k0, std::min(kKb, K - k0), xbuf + k0 / 2, all_pairs, part);
        for_each_panel(n0, n1, K, true, [&](const PanelRef& p, const PanelRef& next) {
            run(p, next, xbuf + p.k0 / 2, all_pairs, part, M, y);
        });
        return;
    }
    for (int64_t mb = 0; mb < M; mb += kBf16XRows) {  // k blocks outermost, x split at each one's first panel
        const int64_t mn = std::min(kBf16XRows, M - mb), part = mn * kPairBlock;
        for_each_panel(n0, n1, K, false, [&](const PanelRef& p, const PanelRef& next) {
            if (p.n0 == n0) split_x_bf16(mn, x + mb * ldx, ldx, p.k0, p.kb, xbuf, kPairBlock, part);
            run(p, next, xbuf, kPairBlock, part, mn, y + mb * ldy);
        });
    }
}
#endif
#endif

void matmul_packed(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                   int64_t ldy, bool acc, float* pack) {
    if (M <= 0 || n1 <= n0) return;
#if HALO_KERNELS_AMX
    if (w.dtype == DType::bf16 && !w.kn) {
        matmul_packed_amx(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
        return;
    }
#elif HALO_KERNELS_BF16
    if (w.dtype == DType::bf16 && !w.kn) {
        matmul_packed_bf16(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
        return;
    }
#endif
    const int64_t K = w.cols;
    // Few rows (all of x fits L2; a MoE expert's prompt rows): panels outermost.
    constexpr int64_t kFewRowFloats = 64 * 1024;
    for_each_panel(n0, n1, K, M * K <= kFewRowFloats, [&](const PanelRef& p, const PanelRef& next) {
        pack_panel(w, p.n0, p.nr, p.k0, p.kb, pack, next);
        for (int64_t m0 = 0; m0 < M; m0 += kMr)
            micro_any(int(std::min(kMr, M - m0)), x + m0 * ldx + p.k0, ldx, pack, p.kb, y + m0 * ldy + p.n0, ldy, p.nr,
                      acc || p.k0 > 0);
    });
    if (K == 0 && !acc)
        for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + n0, y + m * ldy + n1, 0.0f);
}

#if HALO_KERNELS_AVX512
void matmul_rows_blocked(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                         int64_t ldy, bool acc, float* pack);
#endif

void matmul(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y, int64_t ldy,
            bool acc, float* pack) {
    if (M <= 0 || n1 <= n0) return;
    if (!w.kn && M <= kMatvecRows && w.quantized())
        matmul_quant(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
#if HALO_KERNELS_AVX512
    else if (!w.kn && M <= kMatvecRows && M > 4)
        matmul_rows_blocked(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
#endif
    else if (!w.kn && M <= kMatvecRows)
        matvec(M, x, ldx, w, n0, n1, y, ldy, acc);
    else
        matmul_packed(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
}

#if HALO_KERNELS_AVX512
// part[m][r] (16 lanes) += x row m times weight row r (w[r], read as stored and widened in registers) over kb values,
// for m < MR, r < 4, in 16-value steps in k order: the few-row order, carried from one block of k to the next in part
// (zeros first when `first`).
// Each step's four weight loads and MR x loads feed 4 MR FMAs (24 accumulators at MR = 6).
// pf (or null): four rows whose first pf_bytes bytes are asked into L1, a line per row as the steps pass the same
// offset in w: a later step's weights, fetched a few lines at a time between the FMAs rather than all at once (a
// burst of 32 requests fills the core's miss buffers and stalls it).
// Every loop over the accumulators is unrolled and none is captured by a lambda: otherwise GCC 12 keeps the arrays on
// the stack and stores all of them on every step.
template <int MR, DType DT>
void tile4_part(const float* x, int64_t ldx, const char* const* w, int64_t kb, float* part, bool first,
                const char* const* pf, size_t pf_bytes) {
    constexpr size_t es = DT == DType::f32 ? 4 : 2;
    const char *w0p = w[0], *w1p = w[1], *w2p = w[2], *w3p = w[3];
    __m512 a0[MR], a1[MR], a2[MR], a3[MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
        const float* p = part + m * 64;
        a0[m] = first ? _mm512_setzero_ps() : _mm512_load_ps(p);
        a1[m] = first ? _mm512_setzero_ps() : _mm512_load_ps(p + 16);
        a2[m] = first ? _mm512_setzero_ps() : _mm512_load_ps(p + 32);
        a3[m] = first ? _mm512_setzero_ps() : _mm512_load_ps(p + 48);
    }
    if (pf && pf_bytes > 0)  // the rows' last lines (the steps below reach the lines that hold offsets 0, 64, ...)
        for (int r = 0; r < 4; ++r) _mm_prefetch(pf[r] + pf_bytes - 1, _MM_HINT_T0);
    for (int64_t k = 0; k < kb; k += 16) {
        const size_t at = size_t(k) * es;
        if (pf && at % 64 == 0 && at < pf_bytes)
            for (int r = 0; r < 4; ++r) _mm_prefetch(pf[r] + at, _MM_HINT_T0);
        const __mmask16 mk = k + 16 <= kb ? __mmask16(0xffff) : __mmask16((1u << (kb - k)) - 1);
        const __m512 w0 = load16(w0p, DT, k, mk), w1 = load16(w1p, DT, k, mk);
        const __m512 w2 = load16(w2p, DT, k, mk), w3 = load16(w3p, DT, k, mk);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const __m512 xv = _mm512_maskz_loadu_ps(mk, x + m * ldx + k);
            a0[m] = _mm512_fmadd_ps(w0, xv, a0[m]);
            a1[m] = _mm512_fmadd_ps(w1, xv, a1[m]);
            a2[m] = _mm512_fmadd_ps(w2, xv, a2[m]);
            a3[m] = _mm512_fmadd_ps(w3, xv, a3[m]);
        }
    }
    // A prefetched step longer than this one (the last k block is shorter than the others): the rest at once.
    if (pf)
        for (size_t at = (size_t(kb) * es + 63) / 64 * 64; at < pf_bytes; at += 64)
            for (int r = 0; r < 4; ++r) _mm_prefetch(pf[r] + at, _MM_HINT_T0);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
        float* p = part + m * 64;
        _mm512_store_ps(p, a0[m]);
        _mm512_store_ps(p + 16, a1[m]);
        _mm512_store_ps(p + 32, a2[m]);
        _mm512_store_ps(p + 48, a3[m]);
    }
}

template <DType DT>
void tile4_part_rows(int mr, const float* x, int64_t ldx, const char* const* w, int64_t kb, float* part, bool first,
                     const char* const* pf, size_t pf_bytes) {
    switch (mr) {
    case 1: tile4_part<1, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    case 2: tile4_part<2, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    case 3: tile4_part<3, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    case 4: tile4_part<4, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    case 5: tile4_part<5, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    default: tile4_part<6, DT>(x, ldx, w, kb, part, first, pf, pf_bytes); break;
    }
}

// matmul_rows for more than four rows of x (a MoE expert's rows, a prompt chunk's under batch invariance), in blocks
// that stay in L1: per block of x rows and slice of kSlice weight rows, each block of kBlockK values of x meets every
// group of four weight rows of the slice (each weight read from memory once per block of x rows, from L1 by the
// block's later tiles), and the 16-lane sums are carried from one k block to the next in the scratch, then reduced
// as tile reduces them: the same bits as the few-row form. Before, each group of four x rows met the group's whole
// weight rows (x read from L2 on every step) and the FMAs ran at about 0.4 of their rate on M = 16.
// The weights are widened in registers by every tile (a BF16 load and a shift per 16 values, beside four FMAs per
// row of x): converting each step's four rows into an f32 buffer first cost a tenth more at 6 to 32 rows, its loads
// stalling on the weights that had just arrived.
template <DType DT>
void matmul_rows_blocked_as(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                            int64_t ldy, bool acc, float* pack) {
    // Blocks of 24 rows of x: a block's 256 values of x (24 KB) and its sums (6 KB per group) stay in L1 beside the
    // weights (blocks of 32 ran 5-10 % slower from 32 rows up).
    constexpr int64_t kRowsM = 24, kSlice = 64, kBlockK = 256;
    // Steps ahead whose weights each step's first tile fetches (three gain as much, one a sixth less at 6 rows).
    constexpr int64_t kStepsAhead = 2;
    static_assert(kSlice * kRowsM * 16 <= kPackBufferFloats);
    float* part = pack;  // [kSlice / 4][kRowsM][4][16]: the 16-lane sums
    const int64_t K = w.cols;
    constexpr size_t es = DT == DType::f32 ? 4 : 2;
    const size_t row_bytes = size_t(w.ld) * es;
    const char* base = static_cast<const char*>(w.data);
    // Blocks of at most kRowsM rows, as even as they come (25 rows: 13 and 12, not 24 and 1).
    const int64_t blocks = (M + kRowsM - 1) / kRowsM;
    // Slices outermost: a slice's weights (64 rows) stay in L2 while every block of x rows meets them.
    for (int64_t s0 = n0; s0 < n1; s0 += kSlice) {
        const int64_t s1 = std::min(n1, s0 + kSlice), groups = (s1 - s0 + 3) / 4;
        // At least one k block, so that K = 0 gives sums of zero.
        const int64_t k_blocks = std::max<int64_t>(1, (K + kBlockK - 1) / kBlockK), steps = k_blocks * groups;
        // Step i: group i % groups over k block i / groups. Its four rows' pieces into rows (rows past the slice's end
        // read the group's first row again: their sums are not stored); returns the bytes of each piece.
        auto step_rows = [&](int64_t i, const char** rows) {
            const int64_t n = s0 + 4 * (i % groups), k0 = i / groups * kBlockK;
            for (int64_t r = 0; r < 4; ++r)
                rows[r] = base + size_t(n + (n + r < s1 ? r : 0)) * row_bytes + size_t(k0) * es;
            return size_t(std::min(kBlockK, K - k0)) * es;
        };
        for (int64_t bi = 0; bi < blocks; ++bi) {
            const int64_t mb = bi * M / blocks, mn = (bi + 1) * M / blocks - mb;
            const int64_t tiles = (mn + 5) / 6;  // tiles of at most six rows, as even as they come
            // On the first block of x rows, step i's first tile fetches the weights of step i + kStepsAhead (row pieces
            // of 512 bytes are too short for the hardware prefetcher); the first steps' weights are asked for here.
            if (mb == 0)
                for (int64_t i = 0; i < std::min(steps, kStepsAhead); ++i) {
                    const char* rows[4];
                    const size_t bytes = step_rows(i, rows);
                    for (int r = 0; r < 4 && bytes > 0; ++r)
                        for (size_t at = 0; at < bytes + 63; at += 64)
                            _mm_prefetch(rows[r] + std::min(at, bytes - 1), _MM_HINT_T0);
                }
            for (int64_t i = 0; i < steps; ++i) {
                const int64_t g = i % groups, k0 = i / groups * kBlockK, kb = std::min(kBlockK, K - k0);
                const char *rows[4], *ahead[4];
                step_rows(i, rows);
                const size_t ahead_bytes = mb == 0 && i + kStepsAhead < steps ? step_rows(i + kStepsAhead, ahead) : 0;
                float* pg = part + g * kRowsM * 64;
                for (int64_t t = 0; t < tiles; ++t) {
                    const int64_t m0 = t * mn / tiles, m1 = (t + 1) * mn / tiles;
                    tile4_part_rows<DT>(int(m1 - m0), x + (mb + m0) * ldx + k0, ldx, rows, kb, pg + m0 * 64, k0 == 0,
                                        t == 0 && ahead_bytes > 0 ? ahead : nullptr, ahead_bytes);
                }
            }
            for (int64_t g = 0; g < groups; ++g) {
                const int64_t n = s0 + 4 * g, nr = std::min<int64_t>(4, s1 - n);
                for (int64_t m = 0; m < mn; ++m)
                    for (int64_t r = 0; r < nr; ++r) {
                        const float v = _mm512_reduce_add_ps(_mm512_load_ps(part + (g * kRowsM + m) * 64 + r * 16));
                        float& out = y[(mb + m) * ldy + n + r];
                        out = acc ? out + v : v;
                    }
            }
        }
    }
}

void matmul_rows_blocked(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                         int64_t ldy, bool acc, float* pack) {
    switch (w.dtype) {
    case DType::bf16: matmul_rows_blocked_as<DType::bf16>(M, x, ldx, w, n0, n1, y, ldy, acc, pack); break;
    case DType::f16: matmul_rows_blocked_as<DType::f16>(M, x, ldx, w, n0, n1, y, ldy, acc, pack); break;
    default: matmul_rows_blocked_as<DType::f32>(M, x, ldx, w, n0, n1, y, ldy, acc, pack); break;
    }
}
#endif

void matmul_rows(int64_t M, const float* x, int64_t ldx, const Matrix& w, int64_t n0, int64_t n1, float* y,
                 int64_t ldy, bool acc, float* pack) {
    if (M <= 0 || n1 <= n0) return;
    if (w.kn) {  // no row-invariant form; its callers pass one sequence's rows
        matmul(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
        return;
    }
    if (w.quantized()) {
        matmul_quant(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
        return;
    }
    if (M <= 4) {  // one group of rows: convert as we go
        matvec(M, x, ldx, w, n0, n1, y, ldy, acc);
        return;
    }
#if HALO_KERNELS_AVX512
    matmul_rows_blocked(M, x, ldx, w, n0, n1, y, ldy, acc, pack);
#else
    // Blocks of x rows that stay in L2 while the weight rows pass; the four weight rows of a group are converted to
    // f32 once per block when they fit the scratch (exact, so the sums are those of the few-row form), instead of
    // once per group of four x rows.
    constexpr int64_t kRowBlock = 64;
    const int64_t K = w.cols;
    const bool convert = w.dtype != DType::f32 && 4 * K <= kRowPackFloats;
    const DType dt = convert ? DType::f32 : w.dtype;
    const size_t row_bytes = size_t(w.ld) * ops::dtype_size(w.dtype);
    const char* base = static_cast<const char*>(w.data);
    for (int64_t mb = 0; mb < M; mb += kRowBlock) {
        const int64_t mn = std::min(kRowBlock, M - mb);
        for (int64_t n = n0; n < n1; n += 4) {
            const int nr = int(std::min<int64_t>(4, n1 - n));
            const char* rows[4] = {};
            for (int r = 0; r < nr; ++r) {
                rows[r] = base + size_t(n + r) * row_bytes;
                if (convert) {
                    to_f32(rows[r], w.dtype, pack + r * K, K);
                    rows[r] = reinterpret_cast<const char*>(pack + r * K);
                }
            }
            for (int64_t m0 = 0; m0 < mn; m0 += 4) {
                const int mr = int(std::min<int64_t>(4, mn - m0));
                const float* xm = x + (mb + m0) * ldx;
                float* ym = y + (mb + m0) * ldy + n;
                if (nr == 4)
                    tile_rows<4>(mr, xm, ldx, rows, dt, K, ym, ldy, acc);
                else
                    for (int r = 0; r < nr; ++r) tile_rows<1>(mr, xm, ldx, rows + r, dt, K, ym + r, ldy, acc);
            }
        }
    }
#endif
}

float dot(const float* a, const float* b, int64_t n) {
    int64_t i = 0;
    float s = 0;
#if HALO_KERNELS_AVX512
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) {
        const __mmask16 m = __mmask16((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
        i = n;
    }
    s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
#endif
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float* y, float a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

void mul(const float* a, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] *= a[i];
}

float sum_squares(const float* x, int64_t n) { return dot(x, x, n); }

#if HALO_KERNELS_AVX512
// exp for 16 lanes: x = k ln2 + r, |r| <= ln2/2, degree-6 polynomial; about 1 ulp. Inputs below -87.3 give 0.
inline __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365f), hi = _mm512_set1_ps(88.7228f);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(p, k);
    return _mm512_mask_blend_ps(under, res, _mm512_setzero_ps());
}
#endif

void exp_vec(const float* x, float* y, int64_t n) {
    int64_t i = 0;
#if HALO_KERNELS_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
        i = n;
    }
#endif
    for (; i < n; ++i) y[i] = std::exp(x[i]);
}

#if HALO_KERNELS_AVX512
// The delta rule over columns [e0, e0 + 16 NV) of the state (lanes of the last vector past V masked off by `last`),
// with the column sums in registers. The first pass over the rows only reads (the prediction, from the decayed rows);
// the second, from L2, decays each row again, adds k u, stores it and sums the output: one read from DRAM and one
// write of the state. The same operations in the same order as the portable form, so the same bits.
template <int NV>
inline void delta_cols(float* S, int64_t K, int64_t V, int64_t e0, __mmask16 last, const float* q, const float* k,
                       const float* v, const float* decay, float beta, float* o) {
    __m512 acc[NV], u[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t d = 0; d < K; ++d) {
        float* row = S + d * V + e0;
        const __m512 a = _mm512_set1_ps(decay[d]), kd = _mm512_set1_ps(k[d]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
            const __mmask16 m = j == NV - 1 ? last : __mmask16(0xffff);
            acc[j] = _mm512_fmadd_ps(kd, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + 16 * j), a), acc[j]);
        }
    }
    const __m512 b = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
        const __mmask16 m = j == NV - 1 ? last : __mmask16(0xffff);
        u[j] = _mm512_mul_ps(b, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + e0 + 16 * j), acc[j]));
        acc[j] = _mm512_setzero_ps();
    }
    for (int64_t d = 0; d < K; ++d) {
        float* row = S + d * V + e0;
        const __m512 a = _mm512_set1_ps(decay[d]), kd = _mm512_set1_ps(k[d]), qd = _mm512_set1_ps(q[d]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
            const __mmask16 m = j == NV - 1 ? last : __mmask16(0xffff);
            const __m512 s = _mm512_fmadd_ps(kd, u[j], _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + 16 * j), a));
            _mm512_mask_storeu_ps(row + 16 * j, m, s);
            acc[j] = _mm512_fmadd_ps(qd, s, acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j)
        _mm512_mask_storeu_ps(o + e0 + 16 * j, j == NV - 1 ? last : __mmask16(0xffff), acc[j]);
}
#endif

void delta_step(float* S, int64_t K, int64_t V, const float* q, const float* k, const float* v, const float* decay,
                float beta, float* o) {
#if HALO_KERNELS_AVX512
    for (int64_t e0 = 0; e0 < V; e0 += 128) {  // 128 columns (8 vectors) at a time
        const int64_t n = std::min<int64_t>(128, V - e0), nv = (n + 15) / 16;
        const __mmask16 last = __mmask16(0xffffu >> (16 * nv - n));
        switch (nv) {
        case 1: delta_cols<1>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 2: delta_cols<2>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 3: delta_cols<3>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 4: delta_cols<4>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 5: delta_cols<5>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 6: delta_cols<6>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        case 7: delta_cols<7>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        default: delta_cols<8>(S, K, V, e0, last, q, k, v, decay, beta, o); break;
        }
    }
#else
    float pred[512];  // V <= 512 (checked by the op)
    for (int64_t e = 0; e < V; ++e) pred[e] = 0.0f;
    for (int64_t d = 0; d < K; ++d) {
        float* row = S + d * V;
        const float a = decay[d], kd = k[d];
        for (int64_t e = 0; e < V; ++e) {
            row[e] *= a;
            pred[e] += kd * row[e];
        }
    }
    for (int64_t e = 0; e < V; ++e) {
        pred[e] = beta * (v[e] - pred[e]);  // u
        o[e] = 0.0f;
    }
    for (int64_t d = 0; d < K; ++d) {
        float* row = S + d * V;
        const float kd = k[d], qd = q[d];
        for (int64_t e = 0; e < V; ++e) {
            row[e] += kd * pred[e];
            o[e] += qd * row[e];
        }
    }
#endif
}

#if HALO_KERNELS_AVX512
// Scores of J cached rows against the 32 query rows: accumulators hold the 32 rows in two vectors per cached row,
// so the sums need no reduction across lanes. 2J accumulators: J = 4 keeps two FMA pipes busy.
template <int J>
inline void scores32_rows(const float* qt, const float* c, int64_t ld, int64_t K, float* s) {
    __m512 a0[J], a1[J];
    for (int j = 0; j < J; ++j) a0[j] = a1[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        const __m512 q0 = _mm512_loadu_ps(qt + k * 32), q1 = _mm512_loadu_ps(qt + k * 32 + 16);
        for (int j = 0; j < J; ++j) {
            const __m512 cv = _mm512_set1_ps(c[j * ld + k]);
            a0[j] = _mm512_fmadd_ps(q0, cv, a0[j]);
            a1[j] = _mm512_fmadd_ps(q1, cv, a1[j]);
        }
    }
    for (int j = 0; j < J; ++j) {
        _mm512_storeu_ps(s + j * 32, a0[j]);
        _mm512_storeu_ps(s + j * 32 + 16, a1[j]);
    }
}

// Four query rows' accumulators (rows i0 .. i0 + 3, those past `rows` neither read nor written: their p lanes are
// 0) over elements [e0, e0 + 64) (lanes past E masked off by m) take every cached row's share: per cached row, four
// vectors of it meet four broadcast probabilities. Sixteen named accumulators: as an array, GCC keeps a copy of
// them on the stack and stores it on every step.
inline void attend32_rows4(const float* p, int64_t i0, int64_t rows, const float* c, int64_t ld, int64_t e0,
                           const __mmask16* m, int64_t n, float* acc, int64_t lda) {
    const __mmask16 m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    const __mmask16 r0 = 0xffff, r1 = rows > 1 ? 0xffff : 0, r2 = rows > 2 ? 0xffff : 0, r3 = rows > 3 ? 0xffff : 0;
    float* a0p = acc + i0 * lda + e0;
    float* a1p = a0p + lda;
    float* a2p = a1p + lda;
    float* a3p = a2p + lda;
#define HALO_ACC_ROW(i)                                                                                       \
    __m512 a##i##0 = _mm512_maskz_loadu_ps(m0 & r##i, a##i##p), a##i##1 = _mm512_maskz_loadu_ps(m1 & r##i, a##i##p + 16), \
           a##i##2 = _mm512_maskz_loadu_ps(m2 & r##i, a##i##p + 32), a##i##3 = _mm512_maskz_loadu_ps(m3 & r##i, a##i##p + 48);
    HALO_ACC_ROW(0)
    HALO_ACC_ROW(1)
    HALO_ACC_ROW(2)
    HALO_ACC_ROW(3)
#undef HALO_ACC_ROW
    for (int64_t j = 0; j < n; ++j) {
        const float* cj = c + j * ld + e0;
        const __m512 c0 = _mm512_maskz_loadu_ps(m0, cj), c1 = _mm512_maskz_loadu_ps(m1, cj + 16);
        const __m512 c2 = _mm512_maskz_loadu_ps(m2, cj + 32), c3 = _mm512_maskz_loadu_ps(m3, cj + 48);
        const float* pj = p + j * 32 + i0;
#define HALO_ACC_STEP(i)                                  \
    {                                                     \
        const __m512 pv = _mm512_set1_ps(pj[i]);          \
        a##i##0 = _mm512_fmadd_ps(pv, c0, a##i##0);       \
        a##i##1 = _mm512_fmadd_ps(pv, c1, a##i##1);       \
        a##i##2 = _mm512_fmadd_ps(pv, c2, a##i##2);       \
        a##i##3 = _mm512_fmadd_ps(pv, c3, a##i##3);       \
    }
        HALO_ACC_STEP(0)
        HALO_ACC_STEP(1)
        HALO_ACC_STEP(2)
        HALO_ACC_STEP(3)
#undef HALO_ACC_STEP
    }
#define HALO_ACC_STORE(i)                                    \
    _mm512_mask_storeu_ps(a##i##p, m0 & r##i, a##i##0);      \
    _mm512_mask_storeu_ps(a##i##p + 16, m1 & r##i, a##i##1); \
    _mm512_mask_storeu_ps(a##i##p + 32, m2 & r##i, a##i##2); \
    _mm512_mask_storeu_ps(a##i##p + 48, m3 & r##i, a##i##3);
    HALO_ACC_STORE(0)
    HALO_ACC_STORE(1)
    HALO_ACC_STORE(2)
    HALO_ACC_STORE(3)
#undef HALO_ACC_STORE
}
#endif

void scores32(const float* qt, const float* c, int64_t ld, int64_t K, int64_t n, float* s) {
#if HALO_KERNELS_AVX512
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) scores32_rows<4>(qt, c + j * ld, ld, K, s + j * 32);
    switch (n - j) {
    case 3: scores32_rows<3>(qt, c + j * ld, ld, K, s + j * 32); break;
    case 2: scores32_rows<2>(qt, c + j * ld, ld, K, s + j * 32); break;
    case 1: scores32_rows<1>(qt, c + j * ld, ld, K, s + j * 32); break;
    default: break;
    }
#else
    for (int64_t j = 0; j < n; ++j) {
        float acc[32] = {};
        for (int64_t k = 0; k < K; ++k) {
            const float cv = c[j * ld + k];
            for (int i = 0; i < 32; ++i) acc[i] += qt[k * 32 + i] * cv;
        }
        std::copy(acc, acc + 32, s + j * 32);
    }
#endif
}

void attend32(const float* p, int64_t R, const float* c, int64_t ld, int64_t E, int64_t n, float* acc, int64_t lda) {
#if HALO_KERNELS_AVX512
    for (int64_t e0 = 0; e0 < E; e0 += 64) {
        __mmask16 m[4];
        for (int v = 0; v < 4; ++v) {
            const int64_t left = std::clamp<int64_t>(E - e0 - 16 * v, 0, 16);
            m[v] = __mmask16((1u << left) - 1);
        }
        for (int64_t i = 0; i < R; i += 4) attend32_rows4(p, i, std::min<int64_t>(4, R - i), c, ld, e0, m, n, acc, lda);
    }
#else
    for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < n; ++j) {
            const float pj = p[j * 32 + i];
            for (int64_t e = 0; e < E; ++e) acc[i * lda + e] += pj * c[j * ld + e];
        }
#endif
}

void pair_dots(const float* gi, const float* gj, const float* a, const float* b, const float* c, int64_t n, float* out) {
    int64_t i = 0;
    float s0 = 0, s1 = 0;
#if HALO_KERNELS_AVX512
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (; i < n; i += 16) {
        const __mmask16 m = i + 16 <= n ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, gi + i), _mm512_maskz_loadu_ps(m, gj + i)));
        const __m512 be = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, b + i), e);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), be, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, c + i), be, acc1);
    }
    s0 = _mm512_reduce_add_ps(acc0);
    s1 = _mm512_reduce_add_ps(acc1);
#endif
    for (; i < n; ++i) {
        const float be = b[i] * std::exp(gi[i] - gj[i]);
        s0 += a[i] * be;
        s1 += c[i] * be;
    }
    out[0] = s0;
    out[1] = s1;
}

}  // namespace halo::cpu::HALO_KERNEL_NS
