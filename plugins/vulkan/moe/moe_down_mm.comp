#version 450
// MoE down projection for many rows (prefill), tiled like moe_up_mm: y[pair, d] = h[pair] . w2[d] for one tile
// of pairs of one expert and 64 output columns. Grid: (ceil(D / 64), max_tiles).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/shaders/wide.glsl"
#include "plugins/vulkan/moe/moe_shared.h"
#define MOE_WEIGHT_BINDING 5
#include "plugins/vulkan/moe/moe_weights.glsl"

#define BK 16u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer H { float h[]; };
layout(binding = 1) readonly buffer Order { int order_[]; };
layout(binding = 2) readonly buffer Tiles { ivec4 tiles[]; };
layout(binding = 3) readonly buffer Table { ExpertRef refs[]; };
layout(binding = 4) writeonly buffer Y { float y[]; };

shared float hs[BK][68];
shared float ws_[BK][68];
shared int prow[64];

void main() {
    const uint tile = gl_WorkGroupID.y, n0 = gl_WorkGroupID.x * 64u, tid = gl_LocalInvocationID.x;
    if (tile >= uint(tiles[0].x)) return;
    const ivec4 tl = tiles[1u + tile];
    const ExpertRef r = refs[tl.x];
    const uint D = p.dim, I = r.inter, n = uint(tl.z);
    if (n0 >= D || I == 0u) return;  // I == 0: an expert of another pass
    const uint dt2 = (r.flags >> 8) & 15u;
    if (tid < 64u) prow[tid] = tid < n ? order_[tl.y + int(tid)] : -1;
    barrier();
    const uint tx = tid % 16u, ty = tid / 16u;
    float acc[4][4];
    for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < I; k0 += BK) {
        for (uint i = 0u; i < 4u; ++i) {
            const uint idx = tid + i * 256u, row = idx / BK, kk = idx % BK, k = k0 + kk;
            float hv = 0.0, wv = 0.0;
            if (prow[row] >= 0 && k < I) hv = h[uint(prow[row]) * p.inter_max + k];
            if (n0 + row < D && k < I) wv = wload(r.w2_buf, r.w2_off + (n0 + row) * I + k, dt2);
            hs[kk][row] = hv;
            ws_[kk][row] = wv;
        }
        barrier();
        for (uint kk = 0u; kk < BK; ++kk) {
            float a[4], b[4];
            for (uint i = 0u; i < 4u; ++i) {
                a[i] = hs[kk][ty + 16u * i];
                b[i] = ws_[kk][tx + 16u * i];
            }
            for (uint i = 0u; i < 4u; ++i)
                for (uint j = 0u; j < 4u; ++j) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; ++i) {
        const int pr = prow[ty + 16u * i];
        if (pr < 0) continue;
        for (uint j = 0u; j < 4u; ++j) {
            const uint col = n0 + tx + 16u * j;
            if (col < D) y[uint(pr) * D + col] = acc[i][j];
        }
    }
}
