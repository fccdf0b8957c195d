// The MLA kernels' launches (mla.hip) and the tables they share with the host side (mla.cpp).
#pragma once

#include "plugins/hip/exec/execution.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

// Where one row of the step writes and reads the latent cache: the token's absolute position in its sequence, and
// where its sequence's page table starts in the flattened page tables.
struct MlaRow {
    int64_t pos = 0;
    int32_t page_base = 0;
    int32_t pad = 0;
};

// Sizes every MLA kernel reads. cache_kind is kF32, kF16 or kBF16 (the cache's element type).
struct MlaDims {
    int32_t rows = 0;       // T, rows of the step
    int32_t heads = 0;      // H
    int32_t dn = 0;         // q/k nope width per head
    int32_t dr = 0;         // shared rope width
    int32_t dv = 0;         // value width per head
    int32_t rank = 0;       // r, latent width
    int32_t width = 0;      // r + dr, values per cached token
    int32_t page_size = 0;  // tokens per cache page
    uint32_t cache_kind = kF32;
};

// Latents at most this wide are attended (each thread of the attention block holds a few of them per head).
constexpr int kMlaMaxRank = 1024;

// Heads per attention block: they share every cache read. Blocks per (row, context split) of H heads:
constexpr int kMlaHeadsPerBlock = 8;
inline int64_t mla_head_groups(int64_t heads) { return (heads + kMlaHeadsPerBlock - 1) / kMlaHeadsPerBlock; }

// cache[slot of row t] = [RMSNorm(ckv[t, :r]) * norm, ckv[t, r:]], rounded to the cache's element type.
// ckv [T, width]; norm a [r] vector of any float format.
void launch_mla_cache_write(const Launch& l, const MlaDims& d, const float* ckv, const WeightView& norm, float eps,
                            const MlaRow* rows, const int32_t* pages, unsigned char* cache);

// qc[t, h, :r] = W_UK[h]^T q_nope[t, h] and qc[t, h, r:] = q_rot[t, h]. q [T, H*(dn+dr)], qc [T, H, width],
// kv_b [H*(dn+dv), r].
void launch_mla_absorb(const Launch& l, const MlaDims& d, const float* q, const WeightView& kv_b, float* qc);

// Causal attention of every (row, head) over the cached tokens 0..pos, split over the context in `splits` pieces of
// `chunk` positions: part[t, h, s] = [sum_j p_j c_j (r values), max score, sum_j p_j], p_j = exp(score_j - max).
// ctx[t, h, :] [T, H, r] = the merged pieces, normalised.
void launch_mla_attention(const Launch& l, const MlaDims& d, const float* qc, const unsigned char* cache,
                          const MlaRow* rows, const int32_t* pages, float scale, int32_t splits, int64_t chunk,
                          float* part, float* ctx);

}  // namespace halo::hip
