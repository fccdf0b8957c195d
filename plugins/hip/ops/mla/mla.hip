// The MLA kernels, all in the absorbed form: the latent cache append (RMSNorm of c, rounding to the cache type),
// the query absorption into the latent space, attention over the cached latents with an online softmax split over
// the context, and the merge of the splits. Any wave size (warpSize is read at run time).
#include <cmath>

#include "plugins/hip/ops/mla/half_round.h"
#include "plugins/hip/ops/mla/mla.h"

namespace halo::hip {

namespace {

constexpr int kThreads = 128;      // threads per block of the cache write, absorption and merge
constexpr int kRows = 8;           // rows of q per thread in the absorption
constexpr int kAttnThreads = 256;  // threads per attention block
constexpr int kHeads = kMlaHeadsPerBlock;
constexpr int kTile = 64;          // cached positions per step of the attention
constexpr int kPerThread = kMlaMaxRank / kAttnThreads;  // latent values each attention thread accumulates per head

// The cache element index of value 0 of the token at position pos, through its sequence's page table.
__device__ __forceinline__ int64_t cache_base(const MlaDims& d, const int32_t* pages, const MlaRow& row, int64_t pos) {
    const int64_t page = pages[row.page_base + int32_t(pos / d.page_size)];
    return (page * d.page_size + pos % d.page_size) * d.width;
}

// One block per row: the sum of squares of c, then [c * inv * norm, k_rot] stored at the row's cache slot.
__global__ void __launch_bounds__(kThreads) mla_cache_write_kernel(MlaDims d, const float* ckv, WeightView norm,
                                                                   float eps, const MlaRow* rows, const int32_t* pages,
                                                                   unsigned char* cache) {
    __shared__ float scratch[32];
    const int64_t t = blockIdx.x;
    const float* src = ckv + t * d.width;
    float ss = 0.0f;
    for (int e = int(threadIdx.x); e < d.rank; e += int(blockDim.x)) ss += src[e] * src[e];
    ss = block_sum(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / float(d.rank) + eps);
    const MlaRow row = rows[t];
    const int64_t base = cache_base(d, pages, row, row.pos);
    for (int e = int(threadIdx.x); e < d.width; e += int(blockDim.x)) {
        const float v = e < d.rank ? src[e] * (inv * weight_at(norm, 0, e)) : src[e];
        store_float(cache, d.cache_kind, base + e, v);
    }
}

// Thread e of grid (ceil(width / kThreads), H, ceil(T / kRows)) writes qc[t, h, e] for kRows rows t; the W_UK[h]
// rows are read along e (coalesced), once per kRows rows.
__global__ void __launch_bounds__(kThreads) mla_absorb_kernel(MlaDims d, const float* __restrict__ q, WeightView kv_b,
                                                              float* __restrict__ qc) {
    const int e = int(blockIdx.x * blockDim.x + threadIdx.x), h = int(blockIdx.y);
    const int64_t t0 = int64_t(blockIdx.z) * kRows;
    if (e >= d.width) return;  // no barriers below
    const int nr = int(d.rows - t0 < kRows ? d.rows - t0 : kRows);
    const int64_t dq = d.dn + d.dr, ldq = d.heads * dq;
    const float* qh = q + t0 * ldq + h * dq;  // q_nope of head h, row t0
    float* out = qc + (t0 * d.heads + h) * d.width + e;
    const int64_t ldo = int64_t(d.heads) * d.width;
    if (e >= d.rank) {
        for (int i = 0; i < nr; ++i) out[i * ldo] = qh[i * ldq + d.dn + (e - d.rank)];
        return;
    }
    float acc[kRows];
    for (int i = 0; i < kRows; ++i) acc[i] = 0.0f;
    const int64_t row0 = int64_t(h) * (d.dn + d.dv);
    for (int k = 0; k < d.dn; ++k) {
        const float w = weight_at(kv_b, row0 + k, e);
        for (int i = 0; i < nr; ++i) acc[i] += w * qh[i * ldq + k];
    }
    for (int i = 0; i < nr; ++i) out[i * ldo] = acc[i];
}

// One block per (split s, group of kHeads heads from h0, row t): positions [s*chunk, min(pos + 1, (s+1)*chunk)) of
// the row's sequence, in tiles of kTile, every cache read shared by the group's heads. (1) Each warp scores whole
// positions for every head (lanes along the latent, warp_sum). (2) Warp g % warps takes head g's tile: its max,
// the probabilities, the running max and sum (kept in shared memory, only that warp touches them). (3) Thread i
// accumulates latent values i, i + blockDim, ... of every head. Two barriers per tile: score is rewritten only after
// every thread has read it (the second barrier), prob, factor and slot only after every thread has used them (the
// next tile's first barrier).
__global__ void __launch_bounds__(kAttnThreads) mla_attention_kernel(MlaDims d, const float* __restrict__ qc,
                                                                     const unsigned char* __restrict__ cache,
                                                                     const MlaRow* rows, const int32_t* pages,
                                                                     float scale, int32_t splits, int64_t chunk,
                                                                     float* part) {
    __shared__ float score[kHeads][kTile];
    __shared__ float prob[kHeads][kTile];
    __shared__ int64_t slot[kTile];
    __shared__ float run_max[kHeads], run_sum[kHeads], factor[kHeads];
    const int s = int(blockIdx.x), h0 = int(blockIdx.y) * kHeads;
    const int nh = d.heads - h0 < kHeads ? d.heads - h0 : kHeads;
    const int64_t t = blockIdx.z;
    const MlaRow row = rows[t];
    const int64_t j_begin = s * chunk, j_end = row.pos + 1 < j_begin + chunk ? row.pos + 1 : j_begin + chunk;
    const float* qv = qc + (t * d.heads + h0) * d.width;  // [nh][width]
    const int tid = int(threadIdx.x), lane = tid % warpSize, warp = tid / warpSize;
    const int warps = int(blockDim.x) / warpSize;

    float acc[kHeads][kPerThread];
    for (int g = 0; g < kHeads; ++g)
        for (int k = 0; k < kPerThread; ++k) acc[g][k] = 0.0f;
    if (tid < kHeads) {
        run_max[tid] = -INFINITY;
        run_sum[tid] = 0.0f;
    }
    __syncthreads();
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        const int n = int(j_end - j0 < kTile ? j_end - j0 : kTile);
        for (int jj = warp; jj < n; jj += warps) {  // (1)
            const int64_t base = cache_base(d, pages, row, j0 + jj);
            float dot[kHeads];
            for (int g = 0; g < kHeads; ++g) dot[g] = 0.0f;
            for (int e = lane; e < d.width; e += warpSize) {
                const float c = load_float(cache, d.cache_kind, base + e);
                for (int g = 0; g < nh; ++g) dot[g] += qv[g * d.width + e] * c;
            }
            for (int g = 0; g < nh; ++g) {
                const float v = warp_sum(dot[g]);
                if (lane == 0) score[g][jj] = v * scale;
            }
        }
        __syncthreads();
        for (int jj = tid; jj < n; jj += int(blockDim.x)) slot[jj] = cache_base(d, pages, row, j0 + jj);
        for (int g = warp; g < nh; g += warps) {  // (2)
            float mx = -INFINITY;
            for (int jj = lane; jj < n; jj += warpSize) mx = fmaxf(mx, score[g][jj]);
            const float m_new = fmaxf(run_max[g], warp_max(mx));
            float sum = 0.0f;
            for (int jj = lane; jj < n; jj += warpSize) {
                const float pj = expf(score[g][jj] - m_new);
                prob[g][jj] = pj;
                sum += pj;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                const float f = expf(run_max[g] - m_new);  // 0 on the first tile (max -inf)
                factor[g] = f;
                run_sum[g] = run_sum[g] * f + sum;
                run_max[g] = m_new;
            }
        }
        __syncthreads();
        for (int k = 0; k < kPerThread; ++k) {  // (3)
            const int e = tid + k * int(blockDim.x);
            if (e >= d.rank) break;
            float a[kHeads];
            for (int g = 0; g < nh; ++g) a[g] = acc[g][k] * factor[g];
            for (int jj = 0; jj < n; ++jj) {
                const float c = load_float(cache, d.cache_kind, slot[jj] + e);
                for (int g = 0; g < nh; ++g) a[g] += prob[g][jj] * c;
            }
            for (int g = 0; g < nh; ++g) acc[g][k] = a[g];
        }
    }
    for (int g = 0; g < nh; ++g) {
        float* out = part + ((t * d.heads + h0 + g) * splits + s) * (d.rank + 2);
        for (int k = 0; k < kPerThread; ++k) {
            const int e = tid + k * int(blockDim.x);
            if (e >= d.rank) break;
            out[e] = acc[g][k];
        }
        if (tid == 0) {
            out[d.rank] = run_max[g];
            out[d.rank + 1] = run_sum[g];
        }
    }
}

// One block per (head h, row t): ctx[t, h, e] = sum_s exp(m_s - m) acc_s[e] / sum_s exp(m_s - m) l_s. Split 0
// always holds position 0, so m is finite; empty splits (m_s = -inf) add nothing.
__global__ void __launch_bounds__(kThreads) mla_combine_kernel(MlaDims d, const float* __restrict__ part,
                                                               int32_t splits, float* __restrict__ ctx) {
    const int h = int(blockIdx.x);
    const int64_t t = blockIdx.y, stride = d.rank + 2;
    const float* p = part + (t * d.heads + h) * splits * stride;
    float m = -INFINITY;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, p[s * stride + d.rank]);
    float total = 0.0f;
    for (int s = 0; s < splits; ++s)
        if (p[s * stride + d.rank] != -INFINITY) total += expf(p[s * stride + d.rank] - m) * p[s * stride + d.rank + 1];
    const float inv = 1.0f / total;
    float* out = ctx + (t * d.heads + h) * d.rank;
    for (int e = int(threadIdx.x); e < d.rank; e += int(blockDim.x)) {
        float v = 0.0f;
        for (int s = 0; s < splits; ++s)
            if (p[s * stride + d.rank] != -INFINITY) v += expf(p[s * stride + d.rank] - m) * p[s * stride + e];
        out[e] = v * inv;
    }
}

}  // namespace

void launch_mla_cache_write(const Launch& l, const MlaDims& d, const float* ckv, const WeightView& norm, float eps,
                            const MlaRow* rows, const int32_t* pages, unsigned char* cache) {
    if (d.rows <= 0) return;
    hipLaunchKernelGGL(mla_cache_write_kernel, dim3(unsigned(d.rows)), dim3(kThreads), 0, l.stream, d, ckv, norm, eps,
                       rows, pages, cache);
    Execution::check_launch("mla_cache_write");
}

void launch_mla_absorb(const Launch& l, const MlaDims& d, const float* q, const WeightView& kv_b, float* qc) {
    if (d.rows <= 0) return;
    const dim3 grid(unsigned((d.width + kThreads - 1) / kThreads), unsigned(d.heads),
                    unsigned((d.rows + kRows - 1) / kRows));
    hipLaunchKernelGGL(mla_absorb_kernel, grid, dim3(kThreads), 0, l.stream, d, q, kv_b, qc);
    Execution::check_launch("mla_absorb");
}

void launch_mla_attention(const Launch& l, const MlaDims& d, const float* qc, const unsigned char* cache,
                          const MlaRow* rows, const int32_t* pages, float scale, int32_t splits, int64_t chunk,
                          float* part, float* ctx) {
    if (d.rows <= 0) return;
    const dim3 grid(unsigned(splits), unsigned(mla_head_groups(d.heads)), unsigned(d.rows));
    hipLaunchKernelGGL(mla_attention_kernel, grid, dim3(kAttnThreads), 0, l.stream, d, qc, cache, rows, pages, scale,
                       splits, chunk, part);
    Execution::check_launch("mla_attention");
    hipLaunchKernelGGL(mla_combine_kernel, dim3(unsigned(d.heads), unsigned(d.rows)), dim3(kThreads), 0, l.stream, d,
                       part, splits, ctx);
    Execution::check_launch("mla_combine");
}

}  // namespace halo::hip
