// Device rounding of F32 to the two half formats, round to nearest even, bit for bit as ops/dtype.h rounds on the
// host (f32_to_bf16, f32_to_f16), so a cache written here holds what the reference and the CPU plugin store.
#pragma once

#include <cstdint>

#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

__device__ __forceinline__ uint32_t f32_bits(float f) {
    union {
        float f;
        uint32_t u;
    } c{f};
    return c.u;
}

// NaN stays a quiet NaN.
__device__ __forceinline__ uint16_t round_to_bf16(float f) {
    uint32_t bits = f32_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return uint16_t(bits >> 16);
}

// Overflow to infinity, gradual underflow to subnormals.
__device__ __forceinline__ uint16_t round_to_f16(float f) {
    const uint32_t bits = f32_bits(f);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {                                  // below the smallest normal
        if (abs < 0x33000000u) return uint16_t(sign);         // below half the smallest subnormal
        const uint32_t man = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - (abs >> 23);            // value = man * 2^(e-150) = out * 2^-24
        const uint32_t half = 1u << (shift - 1u);
        const uint32_t rest = man & ((1u << shift) - 1u);
        uint32_t out = man >> shift;
        if (rest > half || (rest == half && (out & 1u))) ++out;
        return uint16_t(sign | out);
    }
    uint32_t out = abs - 0x38000000u;  // rebias 127 -> 15
    const uint32_t rest = out & 0x1fffu;
    out >>= 13;
    if (rest > 0x1000u || (rest == 0x1000u && (out & 1u))) ++out;
    return uint16_t(sign | out);
}

// Element i of a buffer of kind kF32/kF16/kBF16 set to v, rounded to that kind.
__device__ __forceinline__ void store_float(unsigned char* p, uint32_t kind, int64_t i, float v) {
    if (kind == kF32)
        reinterpret_cast<float*>(p)[i] = v;
    else
        reinterpret_cast<uint16_t*>(p)[i] = kind == kBF16 ? round_to_bf16(v) : round_to_f16(v);
}

}  // namespace halo::hip
