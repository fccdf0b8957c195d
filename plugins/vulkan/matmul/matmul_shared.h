// Push constants of the matrix products, shared by GLSL and C++:
//   y[z][r, n] (+)= sum_k x[z][r, k] * W[z][n, k]     x, y F32; W any weight format (PyTorch [out, in] layout),
//                                                     read through matmul/weights.glsl
// Offsets are element offsets inside the bound windows, ld_* row strides and *_bs batch (z) strides in elements.
#ifndef HALO_VK_MATMUL_SHARED_H
#define HALO_VK_MATMUL_SHARED_H

#include "plugins/vulkan/matmul/weights_shared.h"
#include "plugins/vulkan/shaders/interop.h"

HALO_GLSL_BEGIN

struct MatmulPush {
    uint rows;
    uint n;
    uint k;
    uint x_off;
    uint ld_x;
    uint x_bs;
    uint y_off;
    uint ld_y;
    uint y_bs;
    uint accumulate;  // 1: y += product
    uint wide;        // 1: 8-element weight loads (weight_at8), and in gemv 16-byte x loads (see matmul.cpp)
    uint pad;
    WeightRef w;      // slots 0 (data) and 1 (scales) of binding 1
};

HALO_GLSL_END

HALO_LAYOUT(MatmulPush, y_off, 24)
HALO_LAYOUT(MatmulPush, wide, 40)
HALO_LAYOUT(MatmulPush, w, 48)
HALO_SIZE(MatmulPush, 80)

#endif
