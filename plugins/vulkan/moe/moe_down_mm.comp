#version 450
// MoE down projection for many rows (prefill), tiled like moe_up_mm: y[pair, d] = h[pair] . w2[d] for one tile
// of pairs of one expert and 64 output columns. Grid: (ceil(D / 64), max_tiles).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"
#define WEIGHT_BINDING 5
#define WEIGHT_SLOTS HALO_MOE_BINDINGS
#include "plugins/vulkan/matmul/weights.glsl"

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
    const bool wide = (r.flags & HALO_MOE_WIDE_DOWN) != 0u;
    if (tid < 64u) prow[tid] = tid < n ? order_[tl.y + int(tid)] : -1;
    barrier();
    const uint tx = tid % 16u, ty = tid / 16u;
    float acc[4][4];
    for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < I; k0 += BK) {
        for (uint i = 0u; i < 4u; ++i) {
            const uint idx = tid + i * 256u, row = idx / BK, kk = idx % BK, k = k0 + kk;
            float hv = 0.0;
            if (prow[row] >= 0 && k < I) hv = h[uint(prow[row]) * p.inter_max + k];
            hs[kk][row] = hv;
            if (!wide) ws_[kk][row] = n0 + row < D && k < I ? weight_at(r.w2, 0u, n0 + row, k) : 0.0;
        }
        if (wide && tid < 128u) {  // I is a multiple of 8: 128 runs of 8
            const uint row = tid / 2u, k8 = (tid % 2u) * 8u;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (n0 + row < D && k0 + k8 < I) weight_at8(r.w2, 0u, n0 + row, (k0 + k8) / 8u, lo, hi);
            for (uint j = 0u; j < 4u; ++j) {
                ws_[k8 + j][row] = lo[j];
                ws_[k8 + 4u + j][row] = hi[j];
            }
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
