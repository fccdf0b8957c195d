// The HIP host emulator (plugins/hip/runtime/emulator.*), which runs the HIP plugin's kernels on the CPU for the
// conformance suite and the goldens: its barriers, shuffles and reductions must behave as a GPU's do, and the kernel
// bugs it exists to find (a missing __syncthreads, a barrier in divergent code, an assumed wave size) must show.
#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>
#include <vector>

#include "plugins/hip/runtime/kernel_util.h"

namespace {

using namespace halo::hip;

// Each block reverses its slice through shared memory: correct only with the barrier between write and read.
__global__ void reverse_kernel(const int* in, int* out, bool barrier) {
    __shared__ int tile[256];
    const int t = int(threadIdx.x), n = int(blockDim.x), base = int(blockIdx.x) * n;
    tile[t] = in[base + t];
    if (barrier) __syncthreads();
    out[base + t] = tile[n - 1 - t];
}

__global__ void sums_kernel(const float* in, float* warp_out, float* block_out) {
    __shared__ float scratch[32];
    const float v = in[blockIdx.x * blockDim.x + threadIdx.x];
    const float w = warp_sum(v);
    const float b = block_sum(v, scratch);
    warp_out[blockIdx.x * blockDim.x + threadIdx.x] = w;
    if (threadIdx.x == 0) block_out[blockIdx.x] = b;
}

__global__ void lanes_kernel(int* out) {
    out[threadIdx.x] = shfl_xor(int(threadIdx.x), 1) + 1000 * warpSize;
}

// Half of a warp waits at the block barrier while the other half waits for a shuffle: a GPU hangs.
__global__ void divergent_barrier_kernel(int* out) {
    if (threadIdx.x % 32 < 16)
        __syncthreads();
    else
        out[threadIdx.x] = int(warp_sum(1.0f));
}

__global__ void dynamic_shared_kernel(float* out) {
    HIP_DYNAMIC_SHARED(float, buf);
    buf[threadIdx.x] = float(threadIdx.x) * 2.0f;
    __syncthreads();
    out[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

std::vector<int> run_reverse(bool barrier) {
    std::vector<int> in(512), out(512, -1);
    std::iota(in.begin(), in.end(), 0);
    hipLaunchKernelGGL(reverse_kernel, dim3(2), dim3(256), 0, nullptr, in.data(), out.data(), barrier);
    return out;
}

TEST(HipEmulator, BarrierOrdersSharedMemory) {
    const std::vector<int> out = run_reverse(true);
    for (int i = 0; i < 512; ++i) EXPECT_EQ(out[size_t(i)], (i / 256) * 256 + 255 - i % 256) << i;
}

// Without the barrier, the threads that run first read slots not yet written: the emulator shows the bug a GPU
// shows sometimes.
TEST(HipEmulator, MissingBarrierGivesWrongResult) { EXPECT_NE(run_reverse(false), run_reverse(true)); }

TEST(HipEmulator, WarpAndBlockSumsAtEveryThread) {
    const int threads = 256, blocks = 3;
    std::vector<float> in(size_t(threads * blocks)), warp(in.size()), block(blocks);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 7) - 3.0f + 0.25f * float(i % 3);
    hipLaunchKernelGGL(sums_kernel, dim3(blocks), dim3(threads), 0, nullptr, in.data(), warp.data(), block.data());
    const int w = warpSize;
    for (int b = 0; b < blocks; ++b) {
        double total = 0;
        for (int t = 0; t < threads; ++t) total += in[size_t(b * threads + t)];
        EXPECT_FLOAT_EQ(block[size_t(b)], float(total));
        for (int t = 0; t < threads; ++t) {
            double ws = 0;
            for (int l = t / w * w; l < t / w * w + w; ++l) ws += in[size_t(b * threads + l)];
            EXPECT_FLOAT_EQ(warp[size_t(b * threads + t)], float(ws)) << b << " " << t;
        }
    }
}

TEST(HipEmulator, ShuffleExchangesNeighbouringLanes) {
    std::vector<int> out(128);
    hipLaunchKernelGGL(lanes_kernel, dim3(1), dim3(128), 0, nullptr, out.data());
    for (int t = 0; t < 128; ++t) EXPECT_EQ(out[size_t(t)], (t ^ 1) + 1000 * int(warpSize));
}

TEST(HipEmulator, DynamicSharedMemory) {
    std::vector<float> out(64);
    hipLaunchKernelGGL(dynamic_shared_kernel, dim3(1), dim3(64), 64 * sizeof(float), nullptr, out.data());
    for (int t = 0; t < 64; ++t) EXPECT_EQ(out[size_t(t)], float((t + 1) % 64) * 2.0f);
}

TEST(HipEmulatorDeathTest, BarrierInDivergentCodeAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    std::vector<int> out(64);
    EXPECT_DEATH(hipLaunchKernelGGL(divergent_barrier_kernel, dim3(1), dim3(64), 0, nullptr, out.data()),
                 "divergent_barrier_kernel: threads of block .* wait at different barriers");
}

TEST(HipEmulator, WaveSizeFromTheEnvironment) {
    const char* w = std::getenv("HALO_HIPEMU_WAVE");
    EXPECT_EQ(int(warpSize), w && std::string(w) == "64" ? 64 : 32);
    hipDeviceProp_t p;
    ASSERT_EQ(hipGetDeviceProperties(&p, 0), hipSuccess);
    EXPECT_EQ(p.warpSize, int(warpSize));
    EXPECT_EQ(hipGetDeviceProperties(&p, 1), hipErrorInvalidDevice);
    EXPECT_STREQ(hipGetErrorName(hipErrorNoDevice), "hipErrorNoDevice");
}

}  // namespace
