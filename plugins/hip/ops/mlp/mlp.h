// The SwiGLU kernel's launch (mlp.hip), also used by the MoE experts.
#pragma once

#include "plugins/hip/exec/execution.h"

namespace halo::hip {

// h[r, i] = silu(g[r, i]) * u[r, i] for r < rows, i < width (row strides ldg, ldu, ldh; h may be g).
void launch_silu_mul(const Launch& l, const float* g, int64_t ldg, const float* u, int64_t ldu, int64_t rows,
                     int64_t width, float* h, int64_t ldh);

}  // namespace halo::hip
