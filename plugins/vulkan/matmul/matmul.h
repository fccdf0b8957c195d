// Matrix products every op uses: y[z][r, n] (+)= x[z][r, :] . W[z][n, :]. Up to 4 rows run the memory-bound
// matrix-vector shader (gemv.comp), more rows the tiled one (gemm.comp).
#pragma once

#include <cstdint>

#include "plugins/vulkan/context.h"
#include "plugins/vulkan/matmul/weights.h"

namespace halo::vk {

// An F32 activation matrix: a binding, row stride and batch stride in elements (the element offset is view.elem).
struct Operand {
    View view;
    uint32_t ld = 0;
    uint32_t batch_stride = 0;
};

// An activation tensor [rows, cols] F32 as an operand.
Operand activation(Context& c, const ops::Tensor& t, const char* what);
// The same operand moved by `elems` elements.
Operand shifted(Operand o, int64_t elems);

void matmul(Context& c, int64_t rows, int64_t batches, const Operand& x, const WeightOperand& w, const Operand& y,
            bool accumulate = false);

// y[rows, N] (+)= x[rows, K] . W^T for a whole weight tensor W [N, K] of any weight format, split into row blocks
// when it (or its scales) does not fit one binding (lm_head and the embedding of the real model exceed lavapipe's
// 128 MiB range).
void linear(Context& c, int64_t rows, const Operand& x, const ops::Tensor& w, const Operand& y, const char* what,
            bool accumulate = false);

}  // namespace halo::vk
