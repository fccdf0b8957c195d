// The element-wise kernels' launches (add.hip).
#pragma once

#include <algorithm>

#include "plugins/hip/exec/execution.h"

namespace halo::hip {

// out[i] = a[i] + b[i] for i < n (out may be a or b).
void launch_add(const Launch& l, const float* a, const float* b, float* out, int64_t n);

}  // namespace halo::hip
