// MoE structs shared by GLSL and C++. Pairs: each row t has `slots` (row, expert) pairs, pair = t * slots + k:
// its top_k routed experts best first, then the shared expert (expert id E) when present. The expert table
// (ExpertRef[E + 1]) says where each expert's weights are: a WeightRef per projection (matmul/weights_shared.h),
// whose data and scale slots index the weight binding array.
#ifndef HALO_VK_MOE_SHARED_H
#define HALO_VK_MOE_SHARED_H

#include "plugins/vulkan/matmul/weights_shared.h"
#include "plugins/vulkan/shaders/interop.h"

#define HALO_MOE_BINDINGS 16   // weight binding array size
#define HALO_MOE_TILE 64       // pairs per tile in the tiled (prefill) path
#define HALO_MOE_WIDE_UP 0x1u    // flags: w1 and w3 rows allow 8-element loads (weight_at8)
#define HALO_MOE_WIDE_DOWN 0x2u  // flags: w2 rows allow 8-element loads

HALO_GLSL_BEGIN

struct ExpertRef {
    WeightRef w1;  // gate projection [inter, D]
    WeightRef w3;  // up projection [inter, D]
    WeightRef w2;  // down projection [D, inter]
    uint inter;    // intermediate size of this expert (0: an expert of another pass)
    uint flags;    // HALO_MOE_WIDE_* bits
    uint pad0;
    uint pad1;
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
    uint x_wide;        // 1: rows of x start on 16-byte boundaries (decode gate/up: 16-byte x loads)
    uint pad1;
    uint pad2;
};

HALO_GLSL_END

HALO_LAYOUT(ExpertRef, w2, 64)
HALO_LAYOUT(ExpertRef, inter, 96)
HALO_SIZE(ExpertRef, 112)
HALO_LAYOUT(MoePush, routed_scale, 36)
HALO_LAYOUT(MoePush, inter_max, 52)
HALO_LAYOUT(MoePush, max_tiles, 80)
HALO_SIZE(MoePush, 96)

#endif
