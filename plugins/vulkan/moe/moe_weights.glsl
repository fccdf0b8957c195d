// The expert weight binding array of the MoE shaders (binding B) and loads from it. The slot index must be
// dynamically uniform (one expert per workgroup).
#ifndef HALO_MOE_WEIGHTS_GLSL
#define HALO_MOE_WEIGHTS_GLSL

layout(binding = MOE_WEIGHT_BINDING) readonly buffer ExpertF32 { float d[]; } wf[HALO_MOE_BINDINGS];
layout(binding = MOE_WEIGHT_BINDING) readonly buffer ExpertU16 { uint16_t d[]; } wh[HALO_MOE_BINDINGS];
layout(binding = MOE_WEIGHT_BINDING) readonly buffer ExpertV4 { uvec4 d[]; } wq[HALO_MOE_BINDINGS];

float wload(uint b, uint i, uint dt) {
    if (dt == HALO_DT_F32) return wf[b].d[i];
    return half_to_float(uint(wh[b].d[i]), dt);
}

// Elements 8c .. 8c+7 of the row starting at element `row` (16-byte aligned).
void wload8(uint b, uint row, uint c, uint dt, out vec4 lo, out vec4 hi) {
    if (dt == HALO_DT_F32) {
        const uint q = row / 4u + 2u * c;
        lo = uintBitsToFloat(wq[b].d[q]);
        hi = uintBitsToFloat(wq[b].d[q + 1u]);
    } else {
        unpack8(wq[b].d[row / 8u + c], dt, lo, hi);
    }
}

#endif
