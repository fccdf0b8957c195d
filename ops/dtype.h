// Element types of tensors and the scalar conversions every backend shares.
// C++17 on purpose: GPU compilers include this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace halo::ops {

enum class DType : uint32_t {
    f32 = 0,
    f16 = 1,
    bf16 = 2,
    i32 = 3,
    // Quantized weight formats (compressed-tensors `pack-quantized`, symmetric, per-group scales): rows of 32-bit
    // little-endian words packed along the last dimension, element j of a word in bits [b*j, b*j + b), stored
    // offset-coded (q + 2^(b-1)). A tensor of these types names its scales in Tensor::scale.
    q4 = 4,  // signed int4, 8 per word, stored q + 8
    q8 = 5,  // signed int8, 4 per word, stored q + 128
};

// How a dtype lays out one row of a matrix: whole storage blocks of block_elems elements in block_bytes bytes.
// Float types are blocks of one element; the quantized ones are blocks of one 32-bit word.
struct WeightFormat {
    int32_t block_elems = 1;
    int32_t block_bytes = 4;
    int32_t bits = 0;   // bits per quantized element (0 for float types)
    int32_t zero = 0;   // stored value of q = 0
};

inline WeightFormat weight_format(DType t) {
    switch (t) {
    case DType::f32: return {1, 4, 0, 0};
    case DType::f16: return {1, 2, 0, 0};
    case DType::bf16: return {1, 2, 0, 0};
    case DType::i32: return {1, 4, 0, 0};
    case DType::q4: return {8, 4, 4, 8};
    case DType::q8: return {4, 4, 8, 128};
    }
    return {};
}

inline bool is_quantized(DType t) { return t == DType::q4 || t == DType::q8; }

// Bytes of one row of `cols` elements (a partial last block takes a whole block).
inline uint64_t row_bytes(DType t, int64_t cols) {
    const WeightFormat f = weight_format(t);
    return uint64_t((cols + f.block_elems - 1) / f.block_elems) * uint64_t(f.block_bytes);
}

// The signed integer q of element i of a packed quantized row (without its scale).
inline int32_t quant_value(const void* row, DType t, int64_t i) {
    const WeightFormat f = weight_format(t);
    uint32_t word;
    std::memcpy(&word, static_cast<const char*>(row) + size_t(i / f.block_elems) * 4, 4);
    const uint32_t mask = (1u << f.bits) - 1u;
    return int32_t((word >> (uint32_t(f.bits) * uint32_t(i % f.block_elems))) & mask) - f.zero;
}

// Bytes per element of the float and integer types; 0 for the quantized ones (use row_bytes).
inline size_t dtype_size(DType t) {
    switch (t) {
    case DType::q4: return 0;
    case DType::q8: return 0;
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    }
    return 0;
}

inline const char* dtype_name(DType t) {
    switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::q4: return "Q4";
    case DType::q8: return "Q8";
    }
    return "?";
}

inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return uint16_t(bits >> 16);
}

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do { man <<= 1; ++e; } while ((man & 0x400) == 0);
            bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even, with overflow to infinity and gradual underflow.
inline uint16_t f32_to_f16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    uint32_t sign = (bits >> 16) & 0x8000;
    uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00);     // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00);    // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {                                   // below the smallest normal: subnormal
        if (abs < 0x33000000u) return uint16_t(sign);          // below half the smallest subnormal
        uint32_t e = abs >> 23;
        uint32_t man = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                              // value = man * 2^(e-150) = out * 2^-24
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = man & ((1u << shift) - 1);
        uint32_t out = man >> shift;
        if (rest > half || (rest == half && (out & 1))) ++out;
        return uint16_t(sign | out);
    }
    uint32_t out = abs - 0x38000000u;                          // rebias 127 -> 15
    uint32_t rest = out & 0x1fff;
    out >>= 13;
    if (rest > 0x1000 || (rest == 0x1000 && (out & 1))) ++out;
    return uint16_t(sign | out);
}

// Reads element i of a buffer of type t as f32 (for reference code and tests, not hot loops).
inline float load_as_f32(const void* data, DType t, size_t i) {
    switch (t) {
    case DType::f32: return static_cast<const float*>(data)[i];
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::i32: return float(static_cast<const int32_t*>(data)[i]);
    case DType::q4:
    case DType::q8: return __builtin_nanf("");  // not element-addressable: see ops::dequantize in tensor.h
    }
    return 0.0f;
}

inline void store_from_f32(void* data, DType t, size_t i, float v) {
    switch (t) {
    case DType::f32: static_cast<float*>(data)[i] = v; break;
    case DType::f16: static_cast<uint16_t*>(data)[i] = f32_to_f16(v); break;
    case DType::bf16: static_cast<uint16_t*>(data)[i] = f32_to_bf16(v); break;
    case DType::i32: static_cast<int32_t*>(data)[i] = int32_t(v); break;
    case DType::q4:
    case DType::q8: break;  // quantized tensors are written whole, never element by element
    }
}

}  // namespace halo::ops
