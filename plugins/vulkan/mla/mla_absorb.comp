#version 450
// MLA query absorption: qc[t, h, e] = sum_d W_UK[h][d, e] q_nope[t, h, d] for e < r (W_UK[h] = kv_b rows
// h*(dn+dv) .. +dn-1), and qc[t, h, r + e] = q_rot[t, h, e]. Grid: (ceil((r+dr) / 64), H, T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/mla/mla_shared.h"
#define WEIGHT_BINDING 1
#define WEIGHT_SLOTS 2
#include "plugins/vulkan/matmul/weights.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { MlaPush p; };
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 2) writeonly buffer Qc { float qc[]; };

void main() {
    const uint e = gl_GlobalInvocationID.x, h = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    if (e >= p.width) return;
    const uint dq = p.dn + p.dr, qb = (t * p.heads + h) * dq;
    float v;
    if (e < p.rank) {
        v = 0.0;
        const uint row0 = h * (p.dn + p.dv);
        for (uint d = 0u; d < p.dn; ++d) v += weight_at(p.kvb, 0u, row0 + d, e) * q[qb + d];
    } else {
        v = q[qb + p.dn + (e - p.rank)];
    }
    qc[(t * p.heads + h) * p.width + e] = v;
}
