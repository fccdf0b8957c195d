// Push constants of the MLA shaders, shared by GLSL and C++. Workspace activations are bound at element 0:
// q [T, H*(dn+dr)], ckv [T, r+dr], qc [T, H, r+dr] (absorbed queries), part [T, H, splits, r+2] (partial context,
// max, sum), ctx [T, H, r]. The cache is [pages, page_size, r+dr] in its own dtype, bound as MLA_CACHE_SLOTS
// slots (mla_cache.glsl).
#ifndef HALO_VK_MLA_SHARED_H
#define HALO_VK_MLA_SHARED_H

#include "plugins/vulkan/matmul/weights_shared.h"
#include "plugins/vulkan/shaders/interop.h"

#define MLA_CACHE_SLOTS 8

HALO_GLSL_BEGIN

struct MlaPush {
    uint rows;       // T
    uint heads;      // H
    uint dn;         // qk_nope_dim
    uint dr;         // qk_rope_dim
    uint dv;         // v_dim
    uint rank;       // r, kv_lora_rank
    uint width;      // r + dr, cache values per token
    uint page_size;
    uint splits;     // context splits per (row, head)
    float scale;     // softmax scale
    float eps;       // kv_a_layernorm eps
    uint cache_off;  // element offsets and dtypes of the cache and the norm weight in their windows
    uint cache_dt;
    uint norm_off;
    uint norm_dt;
    uint cache_shift;  // log2 of the cache elements per binding slot (31: one slot)
    WeightRef kvb;     // kv_b [H * (dn + dv), r], any weight format (mla_absorb: slots 0, 1 of binding 1)
};

HALO_GLSL_END

HALO_LAYOUT(MlaPush, splits, 32)
HALO_LAYOUT(MlaPush, scale, 36)
HALO_LAYOUT(MlaPush, cache_shift, 60)
HALO_LAYOUT(MlaPush, kvb, 64)
HALO_SIZE(MlaPush, 96)

#endif
