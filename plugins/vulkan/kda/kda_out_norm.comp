#version 450
// KDA gated RMSNorm per head, in place: o_h <- o_h * rsqrt(mean(o_h^2) + eps) * o_norm * sigmoid(ogate_h).
// One invocation per (row, head). Grid: (ceil(H / 64), T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) buffer O { float o[]; };
layout(binding = 1) readonly buffer OGate { float ogate[]; };
HALO_TENSOR_RO(2, onorm)

void main() {
    const uint t = gl_WorkGroupID.y, h = gl_GlobalInvocationID.x, K = p.head_dim;
    if (t >= p.rows || h >= p.heads) return;
    const uint base = t * p.width + h * K;
    float ss = 0.0;
    for (uint d = 0u; d < K; ++d) ss += o[base + d] * o[base + d];
    const float inv = inversesqrt(ss / float(K) + p.norm_eps);
    for (uint d = 0u; d < K; ++d)
        o[base + d] = o[base + d] * inv * onorm_load(p.onorm_off + d, p.onorm_dt) * sigmoid(ogate[base + d]);
}
