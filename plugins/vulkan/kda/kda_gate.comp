#version 450
// KDA decay gate and beta, in place: gate[t, c] = -exp(A_log[c / K]) * softplus(gate[t, c] + dt_bias[c]) (softplus
// with threshold 20, as fla) and beta[t, h] = sigmoid(beta[t, h]). Grid: (ceil(D / 256), T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) buffer Gate { float gate[]; };
layout(binding = 1) buffer Beta { float beta[]; };
HALO_TENSOR_RO(2, dtb)
HALO_TENSOR_RO(3, alog)

float softplus(float z) { return z > 20.0 ? z : (z < -15.0 ? exp(z) : log(1.0 + exp(z))); }

void main() {
    const uint t = gl_WorkGroupID.y, c = gl_GlobalInvocationID.x;
    if (t >= p.rows) return;
    if (c < p.width) {
        const uint i = t * p.width + c;
        const float z = gate[i] + dtb_load(p.dt_off + c, p.dt_dt);
        gate[i] = -exp(alog_load(p.alog_off + c / p.head_dim, p.alog_dt)) * softplus(z);
    }
    if (c < p.heads) beta[t * p.heads + c] = sigmoid(beta[t * p.heads + c]);
}
