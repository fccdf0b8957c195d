#version 450
// Matrix-vector products for decode (up to 4 rows, a pipeline per row count): each workgroup computes NC output
// columns for every row.
// Memory-bound on the weights, so W is read once in 8-element steps with whole-word loads (weight_at8: 16 bytes of
// BF16/F16, 2x16 of F32, one Q4 word, two Q8 words) when the layout allows, and the per-invocation partial sums are reduced with subgroup adds (HALO_SUBGROUP) or a
// shared-memory tree. Grid: (2D over ceil(n / NC), batches).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/matmul/matmul_shared.h"
#define WEIGHT_BINDING 1
#define WEIGHT_SLOTS 2
#include "plugins/vulkan/matmul/weights.glsl"
#if HALO_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

#define WG 128u
#define NC 4u

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint MAXR = 4u;  // rows of this pipeline (1..4): decode reduces only what it uses
const uint NV = NC * MAXR;                     // partial sums per invocation
layout(push_constant) uniform Push { MatmulPush p; };
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };

shared float red[NV][WG];

void main() {
    const uint col0 = group_index() * NC;
    const uint z = gl_WorkGroupID.z;
    const uint t = gl_LocalInvocationID.x;
    if (col0 >= p.n) return;
    const uint nr = min(p.rows, MAXR);
    const uint nc = min(NC, p.n - col0);
    const uint xbase = p.x_off + z * p.x_bs;
    float acc[NV];
    for (uint i = 0u; i < NV; ++i) acc[i] = 0.0;

    if (p.wide != 0u) {
        const uint chunks = p.k / 8u;
        for (uint c = t; c < chunks; c += WG) {
            vec4 xlo[MAXR], xhi[MAXR];
            for (uint r = 0u; r < MAXR; ++r) {
                if (r < nr) {
                    const uint xi = (xbase + r * p.ld_x) / 4u + c * 2u;
                    xlo[r] = x4[xi];
                    xhi[r] = x4[xi + 1u];
                }
            }
            for (uint n = 0u; n < NC; ++n) {
                if (n < nc) {
                    vec4 lo, hi;
                    weight_at8(p.w, z, col0 + n, c, lo, hi);
                    for (uint r = 0u; r < MAXR; ++r)
                        if (r < nr) acc[n * MAXR + r] += dot(lo, xlo[r]) + dot(hi, xhi[r]);
                }
            }
        }
    } else {
        for (uint k = t; k < p.k; k += WG) {
            float xv[MAXR];
            for (uint r = 0u; r < MAXR; ++r) xv[r] = r < nr ? x[xbase + r * p.ld_x + k] : 0.0;
            for (uint n = 0u; n < NC; ++n) {
                if (n < nc) {
                    const float wv = weight_at(p.w, z, col0 + n, k);
                    for (uint r = 0u; r < MAXR; ++r) acc[n * MAXR + r] += wv * xv[r];
                }
            }
        }
    }

#if HALO_SUBGROUP
    for (uint i = 0u; i < NV; ++i) acc[i] = subgroupAdd(acc[i]);
    if (subgroupElect())
        for (uint i = 0u; i < NV; ++i) red[i][gl_SubgroupID] = acc[i];
    barrier();
    if (t < NV) {
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; ++g) s += red[t][g];
        red[t][0] = s;
    }
    barrier();
#else
    for (uint i = 0u; i < NV; ++i) red[i][t] = acc[i];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s)
            for (uint i = 0u; i < NV; ++i) red[i][t] += red[i][t + s];
        barrier();
    }
#endif
    if (t < NV) {
        const uint n = t / MAXR, r = t % MAXR;
        if (n < nc && r < nr) {
            const uint yi = p.y_off + z * p.y_bs + r * p.ld_y + col0 + n;
            const float v = red[t][0];
            y[yi] = p.accumulate != 0u ? y[yi] + v : v;
        }
    }
}
