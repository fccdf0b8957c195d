// The embedding kernel's launch (embedding.hip).
#pragma once

#include "plugins/hip/exec/execution.h"
#include <algorithm>

#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

// out[r, :] = table[ids[r], :] for r < rows; an id outside [0, table.rows) writes a row of NaN.
void launch_embedding(const Launch& l, const WeightView& table, const int32_t* ids, int64_t rows, float* out);

}  // namespace halo::hip
