#version 450
// Residual add: out[i] = a[i] + b[i]; out may alias a or b. Grid: 2D over ceil(n / 256) workgroups.
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/glue/glue_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { AddPush p; };
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) buffer Out { float out_[]; };

void main() {
    const uint i = group_index() * 256u + gl_LocalInvocationID.x;
    if (i >= p.n) return;
    out_[p.out_off + i] = a[p.a_off + i] + b[p.b_off + i];
}
