// Push constants of the glue shaders (embedding, RMSNorm, add, SwiGLU), shared by GLSL and C++.
// Offsets (*_off) are element offsets inside the bound window; ld_* are row strides in elements.
#ifndef HALO_VK_GLUE_SHARED_H
#define HALO_VK_GLUE_SHARED_H

#include "plugins/vulkan/shaders/interop.h"

HALO_GLSL_BEGIN

// out[r, :] = table[ids[r] - v0, :] for ids in [v0, v1) (the table rows this window holds).
struct EmbeddingPush {
    uint rows;
    uint width;
    uint table_off;    // element offset of row v0 in the table window
    uint table_dtype;
    uint ids_off;
    uint out_off;
    int v0;
    int v1;
    int vocab;         // rows of the whole table
    uint zero_invalid; // 1: this dispatch zeroes rows whose id is outside [0, vocab)
    uint pad0;
    uint pad1;
};

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w
struct RmsNormPush {
    uint rows;
    uint width;
    uint x_off;
    uint ld_x;
    uint w_off;
    uint w_dtype;
    uint out_off;
    uint ld_out;
    float eps;
    uint pad0;
    uint pad1;
    uint pad2;
};

// out[i] = a[i] + b[i]
struct AddPush {
    uint n;
    uint a_off;
    uint b_off;
    uint out_off;
};

// out[r, i] = silu(g[r, i]) * u[r, i]
struct SwigluPush {
    uint rows;
    uint width;
    uint g_off;
    uint ld_g;
    uint u_off;
    uint ld_u;
    uint out_off;
    uint ld_out;
};

HALO_GLSL_END

HALO_LAYOUT(EmbeddingPush, v0, 24)
HALO_LAYOUT(EmbeddingPush, zero_invalid, 36)
HALO_SIZE(EmbeddingPush, 48)
HALO_LAYOUT(RmsNormPush, eps, 32)
HALO_SIZE(RmsNormPush, 48)
HALO_SIZE(AddPush, 16)
HALO_LAYOUT(SwigluPush, ld_out, 28)
HALO_SIZE(SwigluPush, 32)

#endif
