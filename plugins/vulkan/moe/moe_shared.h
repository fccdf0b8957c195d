// MoE structs shared by GLSL and C++. Pairs: each row t has `slots` (row, expert) pairs, pair = t * slots + k:
// its top_k routed experts best first, then the shared expert (expert id E) when present. The expert table
// (ExpertRef[E + 1]) says where each expert's weights are: a slot of the weight binding array and an element
// offset inside it, per projection.
#ifndef HALO_VK_MOE_SHARED_H
#define HALO_VK_MOE_SHARED_H

#include "plugins/vulkan/shaders/interop.h"

#define HALO_MOE_BINDINGS 16   // weight binding array size
#define HALO_MOE_TILE 64       // pairs per tile in the tiled (prefill) path
#define HALO_MOE_WIDE_UP 0x1000u    // flags: w1 and w3 rows allow 16-byte loads
#define HALO_MOE_WIDE_DOWN 0x2000u  // flags: w2 rows allow 16-byte loads

HALO_GLSL_BEGIN

struct ExpertRef {
    uint w1_buf;  // gate projection [inter, D]
    uint w1_off;
    uint w3_buf;  // up projection [inter, D]
    uint w3_off;
    uint w2_buf;  // down projection [D, inter]
    uint w2_off;
    uint inter;   // intermediate size of this expert
    uint flags;   // dtypes: w1 bits 0-3, w3 bits 4-7, w2 bits 8-11; HALO_MOE_WIDE_* bits
};

struct MoePush {
    uint rows;          // T
    uint dim;           // D
    uint n_experts;     // E (routed)
    uint top_k;
    uint slots;         // pairs per row: top_k + (shared expert ? 1 : 0)
    uint n_groups;
    uint topk_groups;
    uint renormalize;
    uint biased;        // MoeWeighting::biased
    float routed_scale;
    uint has_bias;
    uint bias_off;
    uint bias_dt;
    uint inter_max;     // row stride of the gate workspace h (a multiple of 8)
    uint write_ids;     // 1: also fill the op's topk_ids output
    uint write_wts;     // 1: also fill the op's topk_weights output
    uint ids_off;       // element offsets of those outputs
    uint wts_off;
    uint x_off;
    uint out_off;
    uint max_tiles;     // tiled path: workgroups dispatched along the tile dimension
    uint pad0;
    uint pad1;
    uint pad2;
};

HALO_GLSL_END

HALO_SIZE(ExpertRef, 32)
HALO_LAYOUT(MoePush, routed_scale, 36)
HALO_LAYOUT(MoePush, inter_max, 52)
HALO_LAYOUT(MoePush, max_tiles, 80)
HALO_SIZE(MoePush, 96)

#endif
