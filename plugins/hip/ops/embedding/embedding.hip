#include "plugins/hip/ops/embedding/embedding.h"

namespace halo::hip {

namespace {

__global__ void embedding_kernel(WeightView table, const int32_t* __restrict__ ids, float* __restrict__ out) {
    const int64_t r = blockIdx.y;
    const int32_t id = ids[r];
    const bool valid = id >= 0 && id < table.rows;
    for (int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; d < table.cols; d += int64_t(gridDim.x) * blockDim.x)
        out[r * table.cols + d] = valid ? weight_at(table, id, d) : bits_to_f32(0x7fc00000u);
}

}  // namespace

void launch_embedding(const Launch& l, const WeightView& table, const int32_t* ids, int64_t rows, float* out) {
    if (rows <= 0) return;
    const unsigned x = unsigned(std::min<int64_t>((table.cols + 255) / 256, 64));
    hipLaunchKernelGGL(embedding_kernel, dim3(x, unsigned(rows)), dim3(256), 0, l.stream, table, ids, out);
    Execution::check_launch("embedding");
}

}  // namespace halo::hip
