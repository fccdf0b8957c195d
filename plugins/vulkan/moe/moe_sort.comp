#version 450
// MoE pairs grouped by expert for the tiled path (one workgroup): counts per expert, offsets, the pair order
// (pairs of one expert contiguous), and the tile list: tiles[0].x = count, tiles[1 + i] = (expert, first, rows).
// Grid: (1).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"

#define MAXE 1025u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer Ids { int ids[]; };
layout(binding = 1) writeonly buffer Order { int order_[]; };
layout(binding = 2) writeonly buffer Tiles { ivec4 tiles[]; };

shared uint counts[MAXE];
shared uint starts[MAXE];

void main() {
    const uint tid = gl_LocalInvocationID.x, n_pairs = p.rows * p.slots, NE = p.n_experts + 1u;
    for (uint e = tid; e < NE; e += 256u) counts[e] = 0u;
    barrier();
    for (uint q = tid; q < n_pairs; q += 256u) {
        const int e = ids[q];
        if (e >= 0) atomicAdd(counts[e], 1u);
    }
    barrier();
    if (tid == 0u) {
        uint acc = 0u, nt = 0u;
        for (uint e = 0u; e < NE; ++e) {
            starts[e] = acc;
            const uint c = counts[e];
            for (uint s = 0u; s < c; s += uint(HALO_MOE_TILE)) {
                tiles[1u + nt] = ivec4(int(e), int(acc + s), int(min(uint(HALO_MOE_TILE), c - s)), 0);
                ++nt;
            }
            acc += c;
            counts[e] = 0u;
        }
        tiles[0] = ivec4(int(nt), 0, 0, 0);
    }
    barrier();
    for (uint q = tid; q < n_pairs; q += 256u) {
        const int e = ids[q];
        if (e >= 0) order_[starts[e] + atomicAdd(counts[e], 1u)] = int(q);
    }
}
