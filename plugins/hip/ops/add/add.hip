#include "plugins/hip/ops/add/add.h"

namespace halo::hip {

namespace {

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = a[i] + b[i];
}

}  // namespace

void launch_add(const Launch& l, const float* a, const float* b, float* out, int64_t n) {
    if (n <= 0) return;
    const unsigned blocks = unsigned(std::min<int64_t>((n + 255) / 256, 1024));
    hipLaunchKernelGGL(add_kernel, dim3(blocks), dim3(256), 0, l.stream, a, b, out, n);
    Execution::check_launch("add");
}

}  // namespace halo::hip
