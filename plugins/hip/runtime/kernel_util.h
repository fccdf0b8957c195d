// Device helpers every kernel of the HIP plugin uses: weight element decoding and warp/block reductions, written
// for any wave size (warpSize is 32 on RDNA and NVIDIA, 64 on CDNA; the emulator runs either).
#pragma once

#include <cstdint>

#include "plugins/hip/runtime/hip.h"

namespace halo::hip {

// Lane shuffles under one name on every platform.
template <class T>
__device__ __forceinline__ T shfl_xor(T v, int mask) {
#if defined(HALO_HIP_ON_CUDA)
    return __shfl_xor_sync(0xffffffffu, v, mask);
#else
    return __shfl_xor(v, mask);
#endif
}

// Sum of v over the warp, in every lane. Every lane of the warp must call it.
__device__ __forceinline__ float warp_sum(float v) {
#if defined(HALO_HIP_EMULATOR)
    return ::halo::hipemu::butterfly_sum(v);  // the same additions in one exchange
#endif
    for (int o = warpSize / 2; o > 0; o >>= 1) v += shfl_xor(v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#if defined(HALO_HIP_EMULATOR)
    return ::halo::hipemu::butterfly_max(v);
#endif
    for (int o = warpSize / 2; o > 0; o >>= 1) v = fmaxf(v, shfl_xor(v, o));
    return v;
}

// Sum of v over the block, in every thread. `scratch` is __shared__ memory of at least 32 floats (1024 threads /
// the smallest wave); every thread of the block must call it. It ends with a barrier, so scratch may be reused.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int warps = (int(blockDim.x * blockDim.y * blockDim.z) + warpSize - 1) / warpSize;
    const int t = int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    v = warp_sum(v);
    if (t % warpSize == 0) scratch[t / warpSize] = v;
    __syncthreads();
    float s = 0.0f;
    for (int w = 0; w < warps; ++w) s += scratch[w];  // every thread sums in the same order: one result
    __syncthreads();
    return s;
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int warps = (int(blockDim.x * blockDim.y * blockDim.z) + warpSize - 1) / warpSize;
    const int t = int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    v = warp_max(v);
    if (t % warpSize == 0) scratch[t / warpSize] = v;
    __syncthreads();
    float m = scratch[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
    __syncthreads();
    return m;
}

__device__ __forceinline__ float bits_to_f32(uint32_t u) {
    union {
        uint32_t u;
        float f;
    } c{u};
    return c.f;
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

// IEEE half to float, exact for every value (subnormals, infinities, NaN).
__device__ __forceinline__ float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
    const float sub = float(man) * (1.0f / 16777216.0f);  // man * 2^-24
    return sign ? -sub : sub;
}

// Element kinds of a weight matrix, as ops::DType numbers them (ops/dtype.h).
enum WeightKind : uint32_t { kF32 = 0, kF16 = 1, kBF16 = 2, kQ4 = 4, kQ8 = 5 };

// A weight matrix [rows, cols] on the device in any format: data rows of `row_bytes`, and for Q4/Q8 a dense scale
// matrix [rows, ceil(cols / group)] of `scale_kind` (F32/F16/BF16). Element (r, c) = q(r, c) * scale(r, c / group).
struct WeightView {
    const unsigned char* data = nullptr;
    const unsigned char* scales = nullptr;
    uint64_t row_bytes = 0;
    uint64_t scale_row_bytes = 0;
    uint32_t kind = kF32;
    uint32_t scale_kind = kF32;
    int32_t group = 0;
    int64_t rows = 0, cols = 0;
};

__device__ __forceinline__ float load_float(const unsigned char* p, uint32_t kind, int64_t i) {
    if (kind == kF32) return reinterpret_cast<const float*>(p)[i];
    const uint16_t h = reinterpret_cast<const uint16_t*>(p)[i];
    return kind == kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// Element (r, c) of a weight, exactly (q * scale is exact in f32).
__device__ __forceinline__ float weight_at(const WeightView& w, int64_t r, int64_t c) {
    const unsigned char* row = w.data + uint64_t(r) * w.row_bytes;
    if (w.kind == kF32 || w.kind == kF16 || w.kind == kBF16) return load_float(row, w.kind, c);
    const uint32_t* words = reinterpret_cast<const uint32_t*>(row);
    int32_t q;
    if (w.kind == kQ4)
        q = int32_t((words[c >> 3] >> (4 * (c & 7))) & 0xfu) - 8;
    else
        q = int32_t((words[c >> 2] >> (8 * (c & 3))) & 0xffu) - 128;
    return float(q) * load_float(w.scales + uint64_t(r) * w.scale_row_bytes, w.scale_kind, c / w.group);
}

}  // namespace halo::hip
