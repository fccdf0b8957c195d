#version 450
// MLA attention over the latent cache for 32 heads at once (the decode-critical kernel): one workgroup per
// (row, context split, group of 32 heads) reads each cached token once for all its heads. Per tile of 32 positions:
//   scores S[h, j] = qc[h] . cache_j * scale   as a small product with 32-wide K slices in shared memory,
//   an online softmax per head, and ctx[h, :] += p[h, j] c_j with 8 heads x 8 latent values per invocation.
// Writes (ctx, max, sum) per (row, head, split) for mla_combine. Needs r <= 512. Grid: (splits, ceil(H / 32), T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/mla/mla_shared.h"

#define HB 32u  // heads per workgroup
#define TJ 32u  // positions per tile
#define KS 32u  // K slice of the score product

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MlaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer Pages { int pages[]; };
layout(binding = 2) readonly buffer RowRun { int row_run[]; };
layout(binding = 3) readonly buffer Qc { float qc[]; };
layout(binding = 4) writeonly buffer Part { float part[]; };
#define MLA_CACHE_BINDING 5
#include "plugins/vulkan/mla/mla_cache.glsl"

shared float qs[HB][KS + 1u];
shared float cs[TJ][KS + 1u];
shared float ps[HB][TJ + 1u];  // scores, then probabilities
shared uint rowbase[TJ];
shared float m_sh[HB], l_sh[HB], alpha_sh[HB];

uint token_base(RunDesc run, uint j) {
    const uint page = uint(pages[run.page_base + int(j / p.page_size)]);
    return (page * p.page_size + j % p.page_size) * p.width;
}

void main() {
    const uint s = gl_WorkGroupID.x, h0 = gl_WorkGroupID.y * HB, t = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const RunDesc run = runs[row_run[t]];
    const uint n_ctx = uint(run.pos) + t - uint(run.first_row) + 1u;
    const uint len = (n_ctx + p.splits - 1u) / p.splits;
    const uint j_begin = min(s * len, n_ctx), j_end = min(j_begin + len, n_ctx);
    const uint H = p.heads, width = p.width, rank = p.rank;
    const uint sh = tid / 8u, sj = tid % 8u;    // score mapping: head, positions sj + 8i
    const uint g = tid / 64u, el = tid % 64u;   // context mapping: heads 8g .. 8g+7, latents el + 64m
    float acc[8][8];
    for (uint a = 0u; a < 8u; ++a)
        for (uint m = 0u; m < 8u; ++m) acc[a][m] = 0.0;
    if (tid < HB) {
        m_sh[tid] = HALO_NEG_INF;
        l_sh[tid] = 0.0;
    }

    for (uint j0 = j_begin; j0 < j_end; j0 += TJ) {
        const uint nj = min(TJ, j_end - j0);
        if (tid < TJ) rowbase[tid] = tid < nj ? token_base(run, j0 + tid) : 0u;
        barrier();
        float sc[4] = float[4](0.0, 0.0, 0.0, 0.0);
        for (uint k0 = 0u; k0 < width; k0 += KS) {
            for (uint i = 0u; i < 4u; ++i) {
                const uint idx = tid + 256u * i, a = idx / KS, kk = idx % KS, k = k0 + kk;
                float qv = 0.0, cv = 0.0;
                if (h0 + a < H && k < width) qv = qc[(t * H + h0 + a) * width + k];
                if (a < nj && k < width) cv = mla_cache_load(rowbase[a] + k);
                qs[a][kk] = qv;
                cs[a][kk] = cv;
            }
            barrier();
            for (uint kk = 0u; kk < KS; ++kk) {
                const float qv = qs[sh][kk];
                for (uint i = 0u; i < 4u; ++i) sc[i] += qv * cs[sj + 8u * i][kk];
            }
            barrier();
        }
        for (uint i = 0u; i < 4u; ++i) {
            const uint j = sj + 8u * i;
            ps[sh][j] = j < nj ? sc[i] * p.scale : HALO_NEG_INF;
        }
        barrier();
        if (tid < HB) {
            float mx = HALO_NEG_INF;
            for (uint j = 0u; j < nj; ++j) mx = max(mx, ps[tid][j]);
            const float m_old = m_sh[tid], m_new = max(m_old, mx);
            const float alpha = m_old == HALO_NEG_INF ? 0.0 : exp(m_old - m_new);
            float sum = 0.0;
            for (uint j = 0u; j < TJ; ++j) {
                const float pj = j < nj ? exp(ps[tid][j] - m_new) : 0.0;
                ps[tid][j] = pj;
                sum += pj;
            }
            l_sh[tid] = l_sh[tid] * alpha + sum;
            m_sh[tid] = m_new;
            alpha_sh[tid] = alpha;
        }
        barrier();
        for (uint a = 0u; a < 8u; ++a) {
            const float al = alpha_sh[8u * g + a];
            for (uint m = 0u; m < 8u; ++m) acc[a][m] *= al;
        }
        for (uint j = 0u; j < nj; ++j) {
            float cv[8];
            for (uint m = 0u; m < 8u; ++m) {
                const uint e = el + 64u * m;
                cv[m] = e < rank ? mla_cache_load(rowbase[j] + e) : 0.0;
            }
            for (uint a = 0u; a < 8u; ++a) {
                const float pj = ps[8u * g + a][j];
                for (uint m = 0u; m < 8u; ++m) acc[a][m] += pj * cv[m];
            }
        }
        barrier();
    }

    for (uint a = 0u; a < 8u; ++a) {
        const uint h = h0 + 8u * g + a;
        if (h >= H) continue;
        const uint base = ((t * H + h) * p.splits + s) * (rank + 2u);
        for (uint m = 0u; m < 8u; ++m) {
            const uint e = el + 64u * m;
            if (e < rank) part[base + e] = acc[a][m];
        }
        if (el == 0u) {
            part[base + rank] = m_sh[8u * g + a];
            part[base + rank + 1u] = l_sh[8u * g + a];
        }
    }
}
