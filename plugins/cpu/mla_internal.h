// Pieces of the CPU MLA op shared by its two attention forms (mla.cpp, mla_absorbed.cpp, mla_expanded.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
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

// One online-softmax step for one query row over a block of scores s[0, n) at positions j0.. : positions after
// `limit` are masked, the row's accumulator a[0, width) is rescaled to the new running max, and s is turned into
// the unnormalised probabilities to add (P V) afterwards. a[width] holds the running max, a[width + 1] the sum.
inline void online_softmax_step(const Kernels& k, float* s, int64_t n, int64_t j0, int64_t limit, float scale,
                                float* a, int64_t width) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    float mx = neg_inf;
    for (int64_t j = 0; j < n; ++j) {
        s[j] = j0 + j <= limit ? s[j] * scale : neg_inf;
        mx = std::max(mx, s[j]);
    }
    if (mx == neg_inf) {  // nothing visible in this block for this row
        std::fill(s, s + n, 0.0f);
        return;
    }
    const float m_new = std::max(a[width], mx);
    const float alpha = a[width] == neg_inf ? 0.0f : std::exp(a[width] - m_new);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
        s[j] = s[j] == neg_inf ? 0.0f : std::exp(s[j] - m_new);
        sum += s[j];
    }
    k.scale(a, alpha, width);
    a[width] = m_new;
    a[width + 1] = a[width + 1] * alpha + sum;
}

// Resets a row accumulator for online_softmax_step.
inline void online_softmax_reset(float* a, int64_t width) {
    std::fill(a, a + width, 0.0f);
    a[width] = -std::numeric_limits<float>::infinity();
    a[width + 1] = 0.0f;
}

// Attention for the given runs, writing o rows [first_row, first_row + n_tokens) x [H * dv] of each.
// q: [rows][H][dq] projected queries of the whole step.
void mla_absorbed(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const std::vector<const ops::SeqRun*>& runs,
                  const float* q, float* o);
void mla_expanded(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const ops::SeqRun& run, const float* q,
                  float* o);

}  // namespace halo::cpu
