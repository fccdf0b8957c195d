#version 450
// MoE gate/up projections for many rows (prefill), tiled: a workgroup takes one tile (up to 64 pairs of the same
// expert) and 64 intermediate columns, gathers the pairs' x rows, and computes h = silu(x w1^T) * (x w3^T) with
// 16-deep K slices in shared memory (weights read in runs of 8, weight_at8, when the layout allows). Grid: (ceil(inter_max / 64), max_tiles); tiles past the count exit.
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"
#define WEIGHT_BINDING 5
#define WEIGHT_SLOTS HALO_MOE_BINDINGS
#include "plugins/vulkan/matmul/weights.glsl"

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
    const bool wide = (r.flags & HALO_MOE_WIDE_UP) != 0u;
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
            xs[kk][row] = xv;
            if (!wide) {
                if (n0 + row < I && k < D) {
                    gv = weight_at(r.w1, 0u, n0 + row, k);
                    uv = weight_at(r.w3, 0u, n0 + row, k);
                }
                gs[kk][row] = gv;
                us[kk][row] = uv;
            }
        }
        if (wide) {  // D is a multiple of 8: 128 runs of w1 (invocations 0-127) and of w3 (128-255)
            const uint run = tid % 128u, row = run / 2u, k8 = (run % 2u) * 8u;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (n0 + row < I && k0 + k8 < D) {
                if (tid < 128u) weight_at8(r.w1, 0u, n0 + row, (k0 + k8) / 8u, lo, hi);
                else weight_at8(r.w3, 0u, n0 + row, (k0 + k8) / 8u, lo, hi);
            }
            for (uint j = 0u; j < 4u; ++j) {
                if (tid < 128u) {
                    gs[k8 + j][row] = lo[j];
                    gs[k8 + 4u + j][row] = hi[j];
                } else {
                    us[k8 + j][row] = lo[j];
                    us[k8 + 4u + j][row] = hi[j];
                }
            }
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
