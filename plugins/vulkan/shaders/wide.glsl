// 16-byte weight loads: 8 BF16/F16 values from one uvec4 (for memory-bound matrix-vector shaders).
#ifndef HALO_WIDE_GLSL
#define HALO_WIDE_GLSL

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

#endif
