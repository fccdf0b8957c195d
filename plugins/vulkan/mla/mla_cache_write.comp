#version 450
// MLA latent cache append: for each row (a token at position pos of its sequence), c = RMSNorm(ckv[:r]) *
// kv_a_norm and k_rot = ckv[r:] are stored (in the cache dtype) at the token's page slot. One workgroup per row.
// Grid: (T).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/mla/mla_shared.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { MlaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer Pages { int pages[]; };
layout(binding = 2) readonly buffer RowRun { int row_run[]; };
layout(binding = 3) readonly buffer Ckv { float ckv[]; };
HALO_TENSOR_RO(4, nw)
#define MLA_CACHE_BINDING 5
#define MLA_CACHE_WRITABLE
#include "plugins/vulkan/mla/mla_cache.glsl"

shared float partial[64];

void main() {
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    if (t >= p.rows) return;
    const RunDesc run = runs[row_run[t]];
    const uint pos = uint(run.pos) + t - uint(run.first_row);
    const uint page = uint(pages[run.page_base + int(pos / p.page_size)]);
    const uint dst = (page * p.page_size + pos % p.page_size) * p.width;
    const uint src = t * p.width;
    float ss = 0.0;
    for (uint e = tid; e < p.rank; e += 64u) ss += ckv[src + e] * ckv[src + e];
    partial[tid] = ss;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) partial[tid] += partial[tid + s];
        barrier();
    }
    const float inv = inversesqrt(partial[0] / float(p.rank) + p.eps);
    for (uint e = tid; e < p.width; e += 64u) {
        const float v = e < p.rank ? ckv[src + e] * inv * nw_load(p.norm_off + e, p.norm_dt) : ckv[src + e];
        mla_cache_store(dst + e, v);
    }
}
