// The one place shaders read weight matrices (every format: F32, F16, BF16 from 16-bit words, Q4 and Q8 packed
// words with per-group scales), named by a WeightRef (weights_shared.h). The includer defines WEIGHT_BINDING (the
// binding of the weight array) and WEIGHT_SLOTS (its descriptor count) first; a WeightRef's data and scale slots
// index that array and must be dynamically uniform. Quantized values are dequantized exactly (q * scale in f32);
// callers accumulate in f32. A new format is one decode branch here and one case in weights.cpp.
#ifndef HALO_WEIGHTS_GLSL
#define HALO_WEIGHTS_GLSL

#include "plugins/vulkan/matmul/weights_shared.h"

layout(binding = WEIGHT_BINDING) readonly buffer WeightF32 { float d[]; } weight_f32[WEIGHT_SLOTS];
layout(binding = WEIGHT_BINDING) readonly buffer WeightU16 { uint16_t d[]; } weight_u16[WEIGHT_SLOTS];
layout(binding = WEIGHT_BINDING) readonly buffer WeightU32 { uint d[]; } weight_u32[WEIGHT_SLOTS];
layout(binding = WEIGHT_BINDING) readonly buffer WeightV4 { uvec4 d[]; } weight_v4[WEIGHT_SLOTS];

// Scale number g of row `row` (batch z) of a quantized matrix.
float weight_scale(WeightRef w, uint z, uint row, uint g) {
    const uint i = w.scale_off + z * w.scale_bs + row * w.scale_ld + g, dt = HALO_WEIGHT_SCALE_DTYPE(w.format);
    const uint s = HALO_WEIGHT_SCALE_SLOT(w.format);
    if (dt == HALO_DT_F32) return weight_f32[s].d[i];
    return half_to_float(uint(weight_u16[s].d[i]), dt);
}

// The signed values of one packed word: 8 Q4 values (lo = elements 0-3, hi = 4-7) or 4 Q8 values (lo).
void decode_q4(uint word, out vec4 lo, out vec4 hi) {
    lo = vec4(ivec4((uvec4(word) >> uvec4(0u, 4u, 8u, 12u)) & 15u) - 8);
    hi = vec4(ivec4((uvec4(word) >> uvec4(16u, 20u, 24u, 28u)) & 15u) - 8);
}
vec4 decode_q8(uint word) { return vec4(ivec4((uvec4(word) >> uvec4(0u, 8u, 16u, 24u)) & 255u) - 128); }

// Element k of row `row` (batch z) as f32. Any k < cols; reads one element (or one word and one scale).
float weight_at(WeightRef w, uint z, uint row, uint k) {
    const uint dt = HALO_WEIGHT_DTYPE(w.format), s = HALO_WEIGHT_SLOT(w.format), base = w.off + z * w.bs + row * w.ld;
    if (dt == HALO_DT_F32) return weight_f32[s].d[base + k];
    if (dt == HALO_DT_F16 || dt == HALO_DT_BF16) return half_to_float(uint(weight_u16[s].d[base + k]), dt);
    const uint bits = dt == HALO_DT_Q4 ? 4u : 8u, per = 32u / bits;
    const uint word = weight_u32[s].d[base + k / per];
    const int q = int((word >> (bits * (k % per))) & ((1u << bits) - 1u)) - int(1u << (bits - 1u));
    return float(q) * weight_scale(w, z, row, k / w.group);
}

// 8 BF16/F16 values from one 16-byte load.
void unpack8(uvec4 q, uint dt, out vec4 lo, out vec4 hi) {
    if (dt == HALO_DT_BF16) {
        lo = vec4(uintBitsToFloat(q.x << 16), uintBitsToFloat(q.x & 0xffff0000u), uintBitsToFloat(q.y << 16),
                  uintBitsToFloat(q.y & 0xffff0000u));
        hi = vec4(uintBitsToFloat(q.z << 16), uintBitsToFloat(q.z & 0xffff0000u), uintBitsToFloat(q.w << 16),
                  uintBitsToFloat(q.w & 0xffff0000u));
    } else {
        lo = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
        hi = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
    }
}

// Elements 8c .. 8c+7 of row `row` (batch z) as f32 with whole-word loads: two 16-byte loads for F32, one for
// F16/BF16, one word for Q4, two for Q8, and one scale unless a group boundary falls inside the 8. Needs
// cols % 8 == 0 and, for the float types, rows starting on 16-byte boundaries of the slot (weight_chunks() in
// weights.cpp checks both).
void weight_at8(WeightRef w, uint z, uint row, uint c, out vec4 lo, out vec4 hi) {
    const uint dt = HALO_WEIGHT_DTYPE(w.format), s = HALO_WEIGHT_SLOT(w.format), base = w.off + z * w.bs + row * w.ld;
    if (dt == HALO_DT_F32) {
        const uint q = base / 4u + 2u * c;
        lo = uintBitsToFloat(weight_v4[s].d[q]);
        hi = uintBitsToFloat(weight_v4[s].d[q + 1u]);
        return;
    }
    if (dt == HALO_DT_F16 || dt == HALO_DT_BF16) {
        unpack8(weight_v4[s].d[base / 8u + c], dt, lo, hi);
        return;
    }
    if (dt == HALO_DT_Q4) {
        decode_q4(weight_u32[s].d[base + c], lo, hi);
    } else {
        lo = decode_q8(weight_u32[s].d[base + 2u * c]);
        hi = decode_q8(weight_u32[s].d[base + 2u * c + 1u]);
    }
    const uint k0 = 8u * c, g0 = k0 / w.group;
    if ((k0 + 7u) / w.group == g0) {
        const float sc = weight_scale(w, z, row, g0);
        lo *= sc;
        hi *= sc;
    } else {  // a group boundary inside these 8 (groups that are not multiples of 8)
        lo *= vec4(weight_scale(w, z, row, k0 / w.group), weight_scale(w, z, row, (k0 + 1u) / w.group),
                   weight_scale(w, z, row, (k0 + 2u) / w.group), weight_scale(w, z, row, (k0 + 3u) / w.group));
        hi *= vec4(weight_scale(w, z, row, (k0 + 4u) / w.group), weight_scale(w, z, row, (k0 + 5u) / w.group),
                   weight_scale(w, z, row, (k0 + 6u) / w.group), weight_scale(w, z, row, (k0 + 7u) / w.group));
    }
}

#endif
