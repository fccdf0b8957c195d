#version 450
// Embedding lookup (also the core's row gather for logits): out[r, :] = table[ids[r], :] for the ids this table
// window holds. Grid: (ceil(width / 256), rows).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/glue/glue_shared.h"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { EmbeddingPush p; };
HALO_TENSOR_RO(0, table)
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Out { float out_[]; };

void main() {
    const uint r = gl_WorkGroupID.y;
    const uint d = gl_GlobalInvocationID.x;
    if (r >= p.rows || d >= p.width) return;
    const int id = ids[p.ids_off + r];
    if (id < 0 || id >= p.vocab) {
        if (p.zero_invalid != 0u) out_[p.out_off + r * p.width + d] = 0.0;
        return;
    }
    if (id < p.v0 || id >= p.v1) return;
    out_[p.out_off + r * p.width + d] = table_load(p.table_off + uint(id - p.v0) * p.width + d, p.table_dtype);
}
