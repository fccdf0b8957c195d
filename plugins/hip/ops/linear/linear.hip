// The matrix product kernel: one warp per output column n and up to kRows rows of x, its lanes striding over K and
// summed by warp_sum, so each weight element is read once per kRows rows. Any wave size (warpSize is read at run
// time), any weight format (weight_at decodes every element exactly).
#include "plugins/hip/ops/linear/matmul.h"

namespace halo::hip {

namespace {

constexpr int kRows = 8;       // rows of x per warp
constexpr int kThreads = 256;  // threads per block

__global__ void __launch_bounds__(kThreads) matmul_kernel(const float* __restrict__ x, int64_t ldx, int64_t rows,
                                                          WeightView w, float* __restrict__ y, int64_t ldy) {
    const int warps = int(blockDim.x) / warpSize;
    const int64_t n = int64_t(blockIdx.x) * warps + int64_t(threadIdx.x) / warpSize;
    const int lane = int(threadIdx.x) % warpSize;
    const int64_t r0 = int64_t(blockIdx.y) * kRows;
    if (n >= w.rows) return;  // whole warps leave together
    float acc[kRows];
    for (int i = 0; i < kRows; ++i) acc[i] = 0.0f;
    const int nr = int(rows - r0 < kRows ? rows - r0 : kRows);
    for (int64_t k = lane; k < w.cols; k += warpSize) {
        const float wv = weight_at(w, n, k);
        for (int i = 0; i < nr; ++i) acc[i] += wv * x[(r0 + i) * ldx + k];
    }
    for (int i = 0; i < nr; ++i) {
        const float s = warp_sum(acc[i]);
        if (lane == 0) y[(r0 + i) * ldy + n] = s;
    }
}

}  // namespace

void launch_matmul(const Launch& l, const float* x, int64_t ldx, int64_t rows, const WeightView& w, float* y,
                   int64_t ldy) {
    if (rows <= 0 || w.rows <= 0) return;
    const unsigned per_block = unsigned(kThreads / l.warp);  // warps per block
    const dim3 grid(unsigned((w.rows + per_block - 1) / per_block), unsigned((rows + kRows - 1) / kRows));
    hipLaunchKernelGGL(matmul_kernel, grid, dim3(kThreads), 0, l.stream, x, ldx, rows, w, y, ldy);
    Execution::check_launch("matmul");
}

}  // namespace halo::hip
