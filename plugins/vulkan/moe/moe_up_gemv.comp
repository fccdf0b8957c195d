#version 450
// MoE gate/up projections for few rows (decode): one workgroup per (pair, 4 intermediate columns) reads the pair's
// expert from the table and computes h[pair, i] = silu(x . w1[i]) * (x . w3[i]), with 8-element weight loads
// (weight_at8) and 16-byte x loads where the layout allows. Grid: (ceil(inter_max / 4), pairs).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"
#define WEIGHT_BINDING 4
#define WEIGHT_SLOTS HALO_MOE_BINDINGS
#include "plugins/vulkan/matmul/weights.glsl"

#define WG 128u
#define NC 4u

layout(local_size_x = 128) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) readonly buffer Table { ExpertRef refs[]; };
layout(binding = 3) writeonly buffer H { float h[]; };

shared float red[2u * NC][WG];

void main() {
    const uint pair = gl_WorkGroupID.y, col0 = gl_WorkGroupID.x * NC, tid = gl_LocalInvocationID.x;
    const int e = ids[pair];
    if (e < 0) return;
    const ExpertRef r = refs[e];
    if (col0 >= r.inter) return;
    const uint nc = min(NC, r.inter - col0), D = p.dim;
    const uint xb = p.x_off + (pair / p.slots) * D;
    float g[NC], u[NC];
    for (uint n = 0u; n < NC; ++n) {
        g[n] = 0.0;
        u[n] = 0.0;
    }
    if ((r.flags & HALO_MOE_WIDE_UP) != 0u && p.x_wide != 0u) {
        for (uint c = tid; c < D / 8u; c += WG) {
            const vec4 xlo = x4[xb / 4u + 2u * c], xhi = x4[xb / 4u + 2u * c + 1u];
            for (uint n = 0u; n < NC; ++n) {
                if (n < nc) {
                    vec4 lo, hi;
                    weight_at8(r.w1, 0u, col0 + n, c, lo, hi);
                    g[n] += dot(lo, xlo) + dot(hi, xhi);
                    weight_at8(r.w3, 0u, col0 + n, c, lo, hi);
                    u[n] += dot(lo, xlo) + dot(hi, xhi);
                }
            }
        }
    } else {
        for (uint k = tid; k < D; k += WG) {
            const float xv = x[xb + k];
            for (uint n = 0u; n < NC; ++n) {
                if (n < nc) {
                    g[n] += weight_at(r.w1, 0u, col0 + n, k) * xv;
                    u[n] += weight_at(r.w3, 0u, col0 + n, k) * xv;
                }
            }
        }
    }
    for (uint n = 0u; n < NC; ++n) {
        red[n][tid] = g[n];
        red[NC + n][tid] = u[n];
    }
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            for (uint i = 0u; i < 2u * NC; ++i) red[i][tid] += red[i][tid + s];
        barrier();
    }
    if (tid < nc) h[pair * p.inter_max + col0 + tid] = silu(red[tid][0]) * red[NC + tid][0];
}
