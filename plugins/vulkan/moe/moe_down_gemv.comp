#version 450
// MoE down projection for few rows (decode): y[pair, d] = w2[d] . h[pair] for 4 output columns per workgroup.
// Grid: (ceil(D / 4), pairs).
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
layout(binding = 0) readonly buffer H { float h[]; };
layout(binding = 0) readonly buffer H4 { vec4 h4[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) readonly buffer Table { ExpertRef refs[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };

shared float red[NC][WG];

void main() {
    const uint pair = gl_WorkGroupID.y, col0 = gl_WorkGroupID.x * NC, tid = gl_LocalInvocationID.x;
    const int e = ids[pair];
    if (e < 0 || col0 >= p.dim) return;
    const ExpertRef r = refs[e];
    if (r.inter == 0u) return;  // an expert of another pass
    const uint nc = min(NC, p.dim - col0), I = r.inter;
    const uint hb = pair * p.inter_max;
    float acc[NC];
    for (uint n = 0u; n < NC; ++n) acc[n] = 0.0;
    if ((r.flags & HALO_MOE_WIDE_DOWN) != 0u) {
        for (uint c = tid; c < I / 8u; c += WG) {
            const vec4 hlo = h4[hb / 4u + 2u * c], hhi = h4[hb / 4u + 2u * c + 1u];
            for (uint n = 0u; n < NC; ++n) {
                if (n < nc) {
                    vec4 lo, hi;
                    weight_at8(r.w2, 0u, col0 + n, c, lo, hi);
                    acc[n] += dot(lo, hlo) + dot(hi, hhi);
                }
            }
        }
    } else {
        for (uint k = tid; k < I; k += WG) {
            const float hv = h[hb + k];
            for (uint n = 0u; n < NC; ++n)
                if (n < nc) acc[n] += weight_at(r.w2, 0u, col0 + n, k) * hv;
        }
    }
    for (uint n = 0u; n < NC; ++n) red[n][tid] = acc[n];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            for (uint i = 0u; i < NC; ++i) red[i][tid] += red[i][tid + s];
        barrier();
    }
    if (tid < nc) y[pair * p.dim + col0 + tid] = red[tid][0];
}
