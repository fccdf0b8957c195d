// GLSL shared by every shader: 16-bit element conversions (BF16 from 16-bit words, no BF16 shader feature),
// tensor declarations that read F32/F16/BF16 through one binding, activation functions.
#ifndef HALO_COMMON_GLSL
#define HALO_COMMON_GLSL

#extension GL_EXT_shader_16bit_storage : require
#extension GL_GOOGLE_include_directive : require

#include "plugins/vulkan/shaders/interop.h"

float bf16_to_float(uint h) { return uintBitsToFloat(h << 16); }
float f16_to_float(uint h) { return unpackHalf2x16(h).x; }
float half_to_float(uint h, uint dt) { return dt == HALO_DT_BF16 ? bf16_to_float(h) : f16_to_float(h); }

// Round to nearest even; NaN stays a quiet NaN (as ops::f32_to_bf16).
uint float_to_bf16(float f) {
    uint b = floatBitsToUint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (b >> 16) | 0x40u;
    b += 0x7fffu + ((b >> 16) & 1u);
    return b >> 16;
}

// Round to nearest even with overflow to infinity and gradual underflow (as ops::f32_to_f16).
uint float_to_f16(float f) {
    uint bits = floatBitsToUint(f);
    uint sign = (bits >> 16) & 0x8000u;
    uint a = bits & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return sign;
        uint e = a >> 23;
        uint man = (a & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e;
        uint half_ = 1u << (shift - 1u);
        uint rest = man & ((1u << shift) - 1u);
        uint o = man >> shift;
        if (rest > half_ || (rest == half_ && (o & 1u) != 0u)) ++o;
        return sign | o;
    }
    uint o = a - 0x38000000u;
    uint rest = o & 0x1fffu;
    o >>= 13;
    if (rest > 0x1000u || (rest == 0x1000u && (o & 1u) != 0u)) ++o;
    return sign | o;
}

#define HALO_NEG_INF uintBitsToFloat(0xff800000u)

float silu(float x) { return x / (1.0 + exp(-x)); }
float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

// A read-only tensor of any float dtype at binding b: name_load(i, dtype) reads element i as float.
#define HALO_TENSOR_RO(b, name) \
    layout(binding = b) readonly buffer name##F32 { float name##_f[]; }; \
    layout(binding = b) readonly buffer name##U16 { uint16_t name##_h[]; }; \
    float name##_load(uint i, uint dt) { \
        if (dt == HALO_DT_F32) return name##_f[i]; \
        return half_to_float(uint(name##_h[i]), dt); \
    }

// A read-write tensor of any float dtype: name_load(i, dtype) and name_store(i, dtype, value).
#define HALO_TENSOR_RW(b, name) \
    layout(binding = b) buffer name##F32 { float name##_f[]; }; \
    layout(binding = b) buffer name##U16 { uint16_t name##_h[]; }; \
    float name##_load(uint i, uint dt) { \
        if (dt == HALO_DT_F32) return name##_f[i]; \
        return half_to_float(uint(name##_h[i]), dt); \
    } \
    void name##_store(uint i, uint dt, float v) { \
        if (dt == HALO_DT_F32) name##_f[i] = v; \
        else name##_h[i] = uint16_t(dt == HALO_DT_BF16 ? float_to_bf16(v) : float_to_f16(v)); \
    }

// Linear workgroup index of a 2D grid (x fastest), for dispatches wider than one grid dimension.
uint group_index() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

#endif
