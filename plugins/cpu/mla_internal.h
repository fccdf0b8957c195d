// Pieces of the CPU MLA op shared by its two attention forms (mla.cpp, mla_absorbed.cpp, mla_expanded.cpp).
#pragma once

#include <vector>

#include "plugins/cpu/context.h"

namespace halo::cpu {

struct MlaDims {
    int64_t H, dn, dr, dv, r;  // heads, nope/rope query widths, value width, latent rank
    int64_t dq, dkv, width;    // dn + dr, dn + dv (rows of kv_b per head), r + dr (a cache row)
    int64_t ps;                // tokens per cache page
    explicit MlaDims(const ops::MlaParams& p)
        : H(p.n_heads), dn(p.qk_nope_dim), dr(p.qk_rope_dim), dv(p.v_dim), r(p.kv_lora_rank), dq(dn + dr),
          dkv(dn + dv), width(r + dr), ps(p.page_size) {}
};

// Start of the cache row of a run's token at absolute position pos.
inline const char* cache_row(const ops::MlaParams& p, const MlaDims& d, const ops::SeqRun& run, int64_t pos) {
    return static_cast<const char*>(p.cache.host()) +
           (int64_t(run.pages[pos / d.ps]) * d.ps + pos % d.ps) * d.width * int64_t(ops::dtype_size(p.cache.dtype));
}

// Attention for the given runs, writing o rows [first_row, first_row + n_tokens) x [H * dv] of each.
// q: [rows][H][dq] projected queries of the whole step.
void mla_absorbed(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const std::vector<const ops::SeqRun*>& runs,
                  const float* q, float* o);
void mla_expanded(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const ops::SeqRun& run, const float* q,
                  float* o);

}  // namespace halo::cpu
