// Push constants of the matrix products, shared by GLSL and C++:
//   y[z][r, n] (+)= sum_k x[z][r, k] * W[z][n, k]     x, y F32; W F32/F16/BF16 (PyTorch [out, in] layout)
// Offsets are element offsets inside the bound windows, ld_* row strides and *_bs batch (z) strides in elements.
#ifndef HALO_VK_MATMUL_SHARED_H
#define HALO_VK_MATMUL_SHARED_H

#include "plugins/vulkan/shaders/interop.h"

HALO_GLSL_BEGIN

struct MatmulPush {
    uint rows;
    uint n;
    uint k;
    uint x_off;
    uint ld_x;
    uint x_bs;
    uint w_off;
    uint ld_w;
    uint w_bs;
    uint w_dtype;
    uint y_off;
    uint ld_y;
    uint y_bs;
    uint accumulate;  // 1: y += product
    uint wide;        // gemv: 1 when x and W rows allow 8-element vector loads (see matmul.cpp)
    uint pad;
};

HALO_GLSL_END

HALO_LAYOUT(MatmulPush, w_off, 24)
HALO_LAYOUT(MatmulPush, y_off, 40)
HALO_LAYOUT(MatmulPush, wide, 56)
HALO_SIZE(MatmulPush, 64)

#endif
