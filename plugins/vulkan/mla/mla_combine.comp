#version 450
// MLA: merges the context splits of one (row, head): ctx = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s.
// Splits that saw no position (m = -inf) contribute nothing. Grid: (H, T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/mla/mla_shared.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { MlaPush p; };
layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) writeonly buffer Ctx { float ctx[]; };

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint base = (t * p.heads + h) * p.splits * (p.rank + 2u);
    float mx = HALO_NEG_INF;
    for (uint s = 0u; s < p.splits; ++s) mx = max(mx, part[base + s * (p.rank + 2u) + p.rank]);
    float total = 0.0;
    for (uint s = 0u; s < p.splits; ++s) {
        const float ms = part[base + s * (p.rank + 2u) + p.rank];
        if (ms != HALO_NEG_INF) total += exp(ms - mx) * part[base + s * (p.rank + 2u) + p.rank + 1u];
    }
    const float inv = total > 0.0 ? 1.0 / total : 0.0;
    for (uint e = tid; e < p.rank; e += 64u) {
        float v = 0.0;
        for (uint s = 0u; s < p.splits; ++s) {
            const float ms = part[base + s * (p.rank + 2u) + p.rank];
            if (ms != HALO_NEG_INF) v += exp(ms - mx) * part[base + s * (p.rank + 2u) + e];
        }
        ctx[(t * p.heads + h) * p.rank + e] = v * inv;
    }
}
