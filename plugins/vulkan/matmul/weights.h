// Weight matrices as the shaders see them (host side of matmul/weights.glsl): which formats the plugin reads, the
// storage unit a binding counts in, and the WeightRef that names a matrix's data and scales. Every op that reads a
// weight matrix (matmul, MoE experts, MLA kv_b) builds its WeightRef here. (storage_unit(), the unit a binding
// counts in, is in context.h beside the views.)
#pragma once

#include <cstdint>

#include "plugins/vulkan/context.h"
#include "plugins/vulkan/matmul/weights_shared.h"

namespace halo::vk {

// Throws a sentence naming `what` unless `w` is a matrix the shaders read: F32, F16, BF16, Q4 or Q8, and for Q4/Q8
// a scale buffer of F32/F16/BF16 with a positive group.
void check_weight(const ops::Tensor& w, const char* what);

// The WeightRef of `w` [rows, cols] with its data at element/word `data_elem` of binding slot `data_slot` and its
// scales (Q4/Q8) at scale element `scale_elem` of slot `scale_slot`.
glsl::WeightRef weight_ref(const ops::Tensor& w, uint32_t data_slot, uint32_t data_elem, uint32_t scale_slot,
                           uint32_t scale_elem);

// Whether weight_at8 may read rows of `r` (cols k): k a multiple of 8 and, for the float types, every row of every
// batch starting on a 16-byte boundary of its slot.
bool weight_chunks(const glsl::WeightRef& r, int64_t k);

// A weight matrix [n, k] (per batch) for the matrix products: its data window (slot 0), its scale window (slot 1;
// the data window again for float types) and its WeightRef.
struct WeightOperand {
    View data;
    View scales;
    glsl::WeightRef ref{};
    int64_t n = 0, k = 0;
};

// The whole tensor in one binding pair (throws the sentence when it does not fit one binding; linear() splits).
WeightOperand weight_operand(Context& c, const ops::Tensor& w, const char* what);
// Rows [first, first + count) of every batch of `w`, batches `batch_rows` rows apart (per-head slices of MLA kv_b).
WeightOperand weight_rows(WeightOperand w, int64_t first, int64_t count, int64_t batch_rows);

}  // namespace halo::vk
