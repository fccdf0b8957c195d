#include "plugins/hip/ops/rms_norm/rms_norm.h"

namespace halo::hip {

namespace {

constexpr int kThreads = 256;

// One block per row: a block-wide sum of squares, then the scaled row.
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const float* x, int64_t ldx, int64_t width, WeightView weight,
                                                            float eps, float* out, int64_t ldo) {
    __shared__ float scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * ldx;
    float* o = out + int64_t(blockIdx.x) * ldo;
    float ss = 0.0f;
    for (int64_t d = threadIdx.x; d < width; d += blockDim.x) ss += xr[d] * xr[d];
    ss = block_sum(ss, scratch);  // ends with a barrier: every x read is done before out (maybe x) is written
    const float inv = rsqrtf(ss / float(width) + eps);
    for (int64_t d = threadIdx.x; d < width; d += blockDim.x) o[d] = xr[d] * inv * weight_at(weight, 0, d);
}

}  // namespace

void launch_rms_norm(const Launch& l, const float* x, int64_t ldx, int64_t rows, int64_t width, const WeightView& weight,
                     float eps, float* out, int64_t ldo) {
    if (rows <= 0) return;
    hipLaunchKernelGGL(rms_norm_kernel, dim3(unsigned(rows)), dim3(kThreads), 0, l.stream, x, ldx, width, weight, eps,
                       out, ldo);
    Execution::check_launch("rms_norm");
}

}  // namespace halo::hip
