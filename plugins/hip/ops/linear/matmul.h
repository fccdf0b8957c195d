// The one matrix product every op uses: y[rows, N] = x[rows, K] W^T for a weight W [N, K] of any format
// (F32, F16, BF16, Q4, Q8), summed in F32. Enqueued on the context's stream.
#pragma once

#include "plugins/hip/context.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

// x has row stride ldx floats and y row stride ldy floats (both >= their widths).
void matmul(Context& c, const float* x, int64_t ldx, int64_t rows, const WeightView& w, float* y, int64_t ldy);

// Enqueues the kernel (linear.hip).
void launch_matmul(const Launch& l, const float* x, int64_t ldx, int64_t rows, const WeightView& w, float* y,
                   int64_t ldy);

}  // namespace halo::hip
