// Where a shader finds one weight matrix [rows, cols], shared by GLSL and C++: matmul/weights.glsl reads through it,
// matmul/weights.h builds it. The matrix's data and (Q4/Q8) its scales are two slots of one binding array:
//   F32/F16/BF16  elements, row-major
//   Q4/Q8         rows of little-endian 32-bit words as the core loads them (compressed-tensors pack-quantized:
//                 8 resp. 4 values per word, element j of a word in bits [b*j, b*j + b), stored q + 8 resp.
//                 q + 128), and a dense row-major scale matrix [rows, ceil(cols / group)] of F32/F16/BF16;
//                 element (r, c) = q(r, c) * scale(r, c / group), exact in f32
// Offsets and strides count storage units of the slot: elements for the float types, words for Q4/Q8, scale
// elements for the scales. Batched products (per-head slices) step `bs` / `scale_bs` per batch.
#ifndef HALO_VK_WEIGHTS_SHARED_H
#define HALO_VK_WEIGHTS_SHARED_H

#include "plugins/vulkan/shaders/interop.h"

#define HALO_WEIGHT_DTYPE(format) ((format) & 15u)
#define HALO_WEIGHT_SCALE_DTYPE(format) (((format) >> 4) & 15u)
#define HALO_WEIGHT_SLOT(format) (((format) >> 8) & 255u)
#define HALO_WEIGHT_SCALE_SLOT(format) (((format) >> 16) & 255u)

HALO_GLSL_BEGIN

struct WeightRef {
    uint off;        // row 0 of batch 0 in the data slot (storage units)
    uint ld;         // row stride (storage units)
    uint bs;         // batch stride (storage units; 0 when not batched)
    uint format;     // dtype bits 0-3, scale dtype bits 4-7, data slot bits 8-15, scale slot bits 16-23
    uint scale_off;  // scale (0, 0) of batch 0 in the scale slot (scale elements)
    uint scale_ld;   // scales per row, ceil(cols / group)
    uint scale_bs;   // batch stride of the scales
    uint group;      // elements per scale, at most cols (1 for float types)
};

HALO_GLSL_END

HALO_LAYOUT(WeightRef, format, 12)
HALO_LAYOUT(WeightRef, group, 28)
HALO_SIZE(WeightRef, 32)

#endif
