// The RMSNorm kernel's launch (rms_norm.hip), also used by the ops that normalise inside (KDA's gated norm, MLA's
// latent norm).
#pragma once

#include "plugins/hip/exec/execution.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight, for rows of `width` values with row strides ldx and
// ldo (out may be x). weight is a [width] vector of any float format.
void launch_rms_norm(const Launch& l, const float* x, int64_t ldx, int64_t rows, int64_t width, const WeightView& weight,
                     float eps, float* out, int64_t ldo);

}  // namespace halo::hip
