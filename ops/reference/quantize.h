// Symmetric per-group weight quantization to the pack-quantized formats (ops::DType q4 / q8), the way
// compressed-tensors quantizes a BF16 model with its min-max observer:
//   scale = to_scale_dtype(max(|min(w_g, 0)|, |max(w_g, 0)|) / ((q_max - q_min) / 2))   (7.5 for int4, 127.5 for int8)
//   q     = round_half_even(clamp(bf16(w / scale), q_min, q_max))                         (q = 0 where scale is 0)
// Used by load-time quantization, the checkpoint converter and the tests; dequantization is ops::weight_at.
#pragma once

#include <cstdint>

#include "ops/dtype.h"

namespace halo::ref {

// Quantizes a row-major matrix [rows, cols] of src_dtype (F32, F16 or BF16) to `format` (q4 or q8) with `group`
// elements per scale. packed receives rows * ops::row_bytes(format, cols) bytes (little-endian words, element j of a
// word in bits [b*j, b*j + b), offset-coded); scales receives rows * ceil(cols / group) values of scale_dtype.
void quantize_rows(const void* src, ops::DType src_dtype, int64_t rows, int64_t cols, ops::DType format, int32_t group,
                   ops::DType scale_dtype, uint8_t* packed, uint8_t* scales);

}  // namespace halo::ref
