#version 450
// MoE output: out[t, d] = sum over the row's pairs k (routed best first, then the shared expert) of
// wts[t, k] * y[t * slots + k, d]. Grid: (ceil(D / 256), T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer Y { float y[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) readonly buffer Wts { float wts[]; };
layout(binding = 3) writeonly buffer Out { float out_[]; };

void main() {
    const uint t = gl_WorkGroupID.y, d = gl_GlobalInvocationID.x;
    if (t >= p.rows || d >= p.dim) return;
    float acc = 0.0;
    for (uint k = 0u; k < p.slots; ++k) {
        const uint q = t * p.slots + k;
        if (ids[q] >= 0) acc += wts[q] * y[q * p.dim + d];
    }
    out_[p.out_off + t * p.dim + d] = acc;
}
