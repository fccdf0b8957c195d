#version 450
// MLA attention over the latent cache, absorbed form, for one (row, head, context split): the split's visible
// positions j (causal: j <= the row's position) in tiles of 64, score_j = (qc . cache_j) * scale over all r + dr
// values, an online softmax, and ctx = sum_j p_j c_j (the r latent values). Writes (ctx, max, sum) for
// mla_combine. Grid: (splits, H, T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/mla/mla_shared.h"

#define TILE 64u
#define MAXW 1024u
#define PER (MAXW / TILE)

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { MlaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer Pages { int pages[]; };
layout(binding = 2) readonly buffer RowRun { int row_run[]; };
layout(binding = 3) readonly buffer Qc { float qc[]; };
layout(binding = 4) writeonly buffer Part { float part[]; };
#define MLA_CACHE_BINDING 5
#include "plugins/vulkan/mla/mla_cache.glsl"

shared float qs[MAXW];
shared float ps[TILE];
shared float red[TILE];
shared uint rowbase[TILE];

uint token_base(RunDesc run, uint j) {
    const uint page = uint(pages[run.page_base + int(j / p.page_size)]);
    return (page * p.page_size + j % p.page_size) * p.width;
}

void main() {
    const uint s = gl_WorkGroupID.x, h = gl_WorkGroupID.y, t = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const RunDesc run = runs[row_run[t]];
    const uint n_ctx = uint(run.pos) + t - uint(run.first_row) + 1u;
    const uint len = (n_ctx + p.splits - 1u) / p.splits;
    const uint j_begin = min(s * len, n_ctx), j_end = min(j_begin + len, n_ctx);
    for (uint e = tid; e < p.width; e += TILE) qs[e] = qc[(t * p.heads + h) * p.width + e];
    barrier();

    float acc[PER];
    for (uint i = 0u; i < PER; ++i) acc[i] = 0.0;
    float m = HALO_NEG_INF, l = 0.0;
    for (uint j0 = j_begin; j0 < j_end; j0 += TILE) {
        const uint j = j0 + tid;
        float sc = HALO_NEG_INF;
        if (j < j_end) {
            const uint b = token_base(run, j);
            rowbase[tid] = b;
            float dot_ = 0.0;
            for (uint e = 0u; e < p.width; ++e) dot_ += qs[e] * mla_cache_load(b + e);
            sc = dot_ * p.scale;
        }
        red[tid] = sc;
        barrier();
        for (uint w = TILE / 2u; w > 0u; w >>= 1) {
            if (tid < w) red[tid] = max(red[tid], red[tid + w]);
            barrier();
        }
        const float m_new = max(m, red[0]);
        const float alpha = m == HALO_NEG_INF ? 0.0 : exp(m - m_new);
        const float pj = j < j_end ? exp(sc - m_new) : 0.0;
        barrier();
        ps[tid] = pj;
        red[tid] = pj;
        barrier();
        for (uint w = TILE / 2u; w > 0u; w >>= 1) {
            if (tid < w) red[tid] += red[tid + w];
            barrier();
        }
        l = l * alpha + red[0];
        m = m_new;
        const uint n = min(TILE, j_end - j0);
        for (uint i = 0u; i < PER; ++i) {
            const uint e = tid + i * TILE;
            if (e < p.rank) {
                float a = acc[i] * alpha;
                for (uint jj = 0u; jj < n; ++jj) a += ps[jj] * mla_cache_load(rowbase[jj] + e);
                acc[i] = a;
            }
        }
        barrier();
    }
    const uint out_base = ((t * p.heads + h) * p.splits + s) * (p.rank + 2u);
    for (uint i = 0u; i < PER; ++i) {
        const uint e = tid + i * TILE;
        if (e < p.rank) part[out_base + e] = acc[i];
    }
    if (tid == 0u) {
        part[out_base + p.rank] = m;
        part[out_base + p.rank + 1u] = l;
    }
}
