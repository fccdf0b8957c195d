#version 450
// SwiGLU gate: out[r, i] = silu(g[r, i]) * u[r, i]; out may alias g. Grid: (ceil(width / 256), rows).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/glue/glue_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { SwigluPush p; };
layout(binding = 0) readonly buffer G { float g[]; };
layout(binding = 1) readonly buffer U { float u[]; };
layout(binding = 2) buffer Out { float out_[]; };

void main() {
    const uint r = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    if (r >= p.rows || i >= p.width) return;
    out_[p.out_off + r * p.ld_out + i] = silu(g[p.g_off + r * p.ld_g + i]) * u[p.u_off + r * p.ld_u + i];
}
