#version 450
// KDA recurrence, token by token (the decode form), for the runs in the list. Value columns are independent, so a
// workgroup owns one (run, head, block of 32 value columns); its 128 invocations are 4 slices of key rows x 32
// columns and keep that block of the F32 state in registers (KQ = ceil(K / 4) rows each). Per token:
//   S <- diag(exp(g)) S ; u = beta (v - k^T S) ; S <- S + k u^T ; o = q^T S   (q, k normalised, q scaled)
// Grid: (ceil(K / 32), H, runs in the list).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

#define EB 32u
#define MAXK 256u

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint KQ = 32u;  // key rows per slice
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer List { int list[]; };
layout(binding = 2) readonly buffer Act { float act[]; };
layout(binding = 3) readonly buffer Gate { float gate[]; };
layout(binding = 4) readonly buffer Beta { float beta[]; };
layout(binding = 5) buffer State { float state[]; };
layout(binding = 6) writeonly buffer O { float o[]; };

shared float qs[MAXK], ks[MAXK], gs[MAXK];
shared float vs[EB], us[EB];
shared float red[4][EB];
shared float beta_t;

void main() {
    const uint tid = gl_LocalInvocationID.x, el = tid % EB, slice = tid / EB;
    const uint h = gl_WorkGroupID.y, K = p.head_dim, D = p.width, H = p.heads;
    const RunDesc run = runs[list[gl_WorkGroupID.z]];
    const uint e = gl_WorkGroupID.x * EB + el;
    const bool live = e < K;
    const uint sbase = p.state_off + (uint(run.slot) * H + h) * K * K;
    float s[KQ];
    for (uint i = 0u; i < KQ; ++i) {
        const uint d = slice * KQ + i;
        s[i] = 0.0;
        if (live && d < K) s[i] = state[sbase + d * K + e];
    }
    for (int t = 0; t < run.n_tokens; ++t) {
        const uint row = uint(run.first_row + t);
        const uint ab = row * 3u * D + h * K;
        for (uint d = tid; d < K; d += 128u) {
            qs[d] = act[ab + d];
            ks[d] = act[ab + D + d];
            gs[d] = exp(gate[row * D + h * K + d]);
        }
        if (tid < EB) vs[tid] = live ? act[ab + 2u * D + e] : 0.0;
        if (tid == 0u) beta_t = beta[row * H + h];
        barrier();
        float pred = 0.0;
        for (uint i = 0u; i < KQ; ++i) {
            const uint d = slice * KQ + i;
            if (d < K) {
                s[i] *= gs[d];
                pred += ks[d] * s[i];
            }
        }
        red[slice][el] = pred;
        barrier();
        if (slice == 0u) us[el] = beta_t * (vs[el] - (red[0][el] + red[1][el] + red[2][el] + red[3][el]));
        barrier();
        const float u = us[el];
        float acc = 0.0;
        for (uint i = 0u; i < KQ; ++i) {
            const uint d = slice * KQ + i;
            if (d < K) {
                s[i] += ks[d] * u;
                acc += qs[d] * s[i];
            }
        }
        red[slice][el] = acc;
        barrier();
        if (slice == 0u && live) o[row * D + h * K + e] = red[0][el] + red[1][el] + red[2][el] + red[3][el];
        barrier();
    }
    for (uint i = 0u; i < KQ; ++i) {
        const uint d = slice * KQ + i;
        if (live && d < K) state[sbase + d * K + e] = s[i];
    }
}
