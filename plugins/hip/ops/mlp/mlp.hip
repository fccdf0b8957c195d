#include "plugins/hip/ops/mlp/mlp.h"

#include <algorithm>

#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

namespace {

__global__ void silu_mul_kernel(const float* g, int64_t ldg, const float* u, int64_t ldu, int64_t width, float* h,
                                int64_t ldh) {
    const int64_t r = blockIdx.y;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < width; i += int64_t(gridDim.x) * blockDim.x) {
        const float a = g[r * ldg + i];
        h[r * ldh + i] = a / (1.0f + expf(-a)) * u[r * ldu + i];
    }
}

}  // namespace

void launch_silu_mul(const Launch& l, const float* g, int64_t ldg, const float* u, int64_t ldu, int64_t rows,
                     int64_t width, float* h, int64_t ldh) {
    if (rows <= 0 || width <= 0) return;
    const unsigned x = unsigned(std::min<int64_t>((width + 255) / 256, 64));
    hipLaunchKernelGGL(silu_mul_kernel, dim3(x, unsigned(rows)), dim3(256), 0, l.stream, g, ldg, u, ldu, width, h, ldh);
    Execution::check_launch("silu_mul");
}

}  // namespace halo::hip
