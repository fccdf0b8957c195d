#version 450
// KDA q/k normalisation in place: q_h <- q_h / sqrt(|q_h|^2 + l2_eps) * K^-0.5, k_h <- k_h / sqrt(|k_h|^2 + l2_eps).
// One invocation per (row, head, q or k). Grid: (ceil(2H / 64), T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) buffer Act { float act[]; };

void main() {
    const uint t = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    if (t >= p.rows || i >= 2u * p.heads) return;
    const uint which = i / p.heads, h = i % p.heads, K = p.head_dim;
    const uint base = t * 3u * p.width + which * p.width + h * K;
    float ss = 0.0;
    for (uint d = 0u; d < K; ++d) ss += act[base + d] * act[base + d];
    const float s = (which == 0u ? p.q_scale : 1.0) / sqrt(ss + p.l2_eps);
    for (uint d = 0u; d < K; ++d) act[base + d] *= s;
}
