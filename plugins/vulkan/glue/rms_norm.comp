#version 450
// RMSNorm, one workgroup per row: out = x * rsqrt(mean(x^2) + eps) * w. out may alias x (each invocation rewrites
// only the elements it read). Grid: (rows).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/glue/glue_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { RmsNormPush p; };
layout(binding = 0) readonly buffer X { float x[]; };
HALO_TENSOR_RO(1, w)
layout(binding = 2) buffer Out { float out_[]; };

shared float partial[256];

void main() {
    const uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    if (r >= p.rows) return;
    const uint xb = p.x_off + r * p.ld_x;
    float ss = 0.0;
    for (uint d = t; d < p.width; d += 256u) {
        const float v = x[xb + d];
        ss += v * v;
    }
    partial[t] = ss;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) partial[t] += partial[t + s];
        barrier();
    }
    const float inv = inversesqrt(partial[0] / float(p.width) + p.eps);
    const uint ob = p.out_off + r * p.ld_out;
    for (uint d = t; d < p.width; d += 256u) out_[ob + d] = x[xb + d] * inv * w_load(p.w_off + d, p.w_dtype);
}
