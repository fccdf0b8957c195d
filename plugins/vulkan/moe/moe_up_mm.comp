#version 450
// MoE gate/up projections for many rows (prefill), tiled: a workgroup takes one tile (up to 64 pairs of the same
// expert) and 64 intermediate columns, gathers the pairs' x rows, and computes h = silu(x w1^T) * (x w3^T) with
// 16-deep K slices in shared memory. Grid: (ceil(inter_max / 64), max_tiles); tiles past the count exit.
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/shaders/wide.glsl"
#include "plugins/vulkan/moe/moe_shared.h"
#define MOE_WEIGHT_BINDING 5
#include "plugins/vulkan/moe/moe_weights.glsl"

#define BK 16u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Order { int order_[]; };
layout(binding = 2) readonly buffer Tiles { ivec4 tiles[]; };
layout(binding = 3) readonly buffer Table { ExpertRef refs[]; };
layout(binding = 4) writeonly buffer H { float h[]; };

shared float xs[BK][68];
shared float gs[BK][68];
shared float us[BK][68];
shared int prow[64];

void main() {
    const uint tile = gl_WorkGroupID.y, n0 = gl_WorkGroupID.x * 64u, tid = gl_LocalInvocationID.x;
    if (tile >= uint(tiles[0].x)) return;
    const ivec4 tl = tiles[1u + tile];
    const ExpertRef r = refs[tl.x];
    if (n0 >= r.inter) return;
    const uint D = p.dim, I = r.inter, n = uint(tl.z);
    const uint dt1 = r.flags & 15u, dt3 = (r.flags >> 4) & 15u;
    if (tid < 64u) prow[tid] = tid < n ? order_[tl.y + int(tid)] : -1;
    barrier();
    const uint tx = tid % 16u, ty = tid / 16u;
    float g[4][4], u[4][4];
    for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) {
            g[i][j] = 0.0;
            u[i][j] = 0.0;
        }
    for (uint k0 = 0u; k0 < D; k0 += BK) {
        for (uint i = 0u; i < 4u; ++i) {
            const uint idx = tid + i * 256u, row = idx / BK, kk = idx % BK, k = k0 + kk;
            float xv = 0.0, gv = 0.0, uv = 0.0;
            if (prow[row] >= 0 && k < D) xv = x[p.x_off + (uint(prow[row]) / p.slots) * D + k];
            if (n0 + row < I && k < D) {
                gv = wload(r.w1_buf, r.w1_off + (n0 + row) * D + k, dt1);
                uv = wload(r.w3_buf, r.w3_off + (n0 + row) * D + k, dt3);
            }
            xs[kk][row] = xv;
            gs[kk][row] = gv;
            us[kk][row] = uv;
        }
        barrier();
        for (uint kk = 0u; kk < BK; ++kk) {
            float a[4], bg[4], bu[4];
            for (uint i = 0u; i < 4u; ++i) {
                a[i] = xs[kk][ty + 16u * i];
                bg[i] = gs[kk][tx + 16u * i];
                bu[i] = us[kk][tx + 16u * i];
            }
            for (uint i = 0u; i < 4u; ++i)
                for (uint j = 0u; j < 4u; ++j) {
                    g[i][j] += a[i] * bg[j];
                    u[i][j] += a[i] * bu[j];
                }
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; ++i) {
        const int pr = prow[ty + 16u * i];
        if (pr < 0) continue;
        for (uint j = 0u; j < 4u; ++j) {
            const uint col = n0 + tx + 16u * j;
            if (col < I) h[uint(pr) * p.inter_max + col] = silu(g[i][j]) * u[i][j];
        }
    }
}
