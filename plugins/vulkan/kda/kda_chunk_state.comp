#version 450
// KDA chunked form, part 2 (sequential over the chunks of a run). A workgroup owns one (run, head, block of 32
// value columns) and keeps that block of the F32 state S0 in shared memory. Per chunk, from part 1's workspace:
//   V'  = U - Wm S0
//   O_i = (exp(G_i) * q_i)^T S0 + sum_{j<=i} Aqk_ij V'_j
//   S   = diag(exp(G_last)) S0 + sum_j (exp(G_last - G_j) * k_j) V'_j^T
// Grid: (ceil(K / 32), H, runs in the list). K <= 128 (the host uses the recurrent form beyond).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

#define EB 32u
#define KMAX 128u
#define CMAX 64u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer List { int list[]; };
layout(binding = 2) readonly buffer Act { float act[]; };
layout(binding = 3) readonly buffer Ws { float ws[]; };
layout(binding = 4) buffer State { float state[]; };
layout(binding = 5) writeonly buffer O { float o[]; };

shared float Sb[KMAX * EB];
shared float Vn[CMAX * EB];

void main() {
    const uint tid = gl_LocalInvocationID.x, h = gl_WorkGroupID.y, e0 = gl_WorkGroupID.x * EB;
    const uint K = p.head_dim, V = K, D = p.width, H = p.heads, S = p.ws_stride, C = p.chunk;
    const RunDesc run = runs[list[gl_WorkGroupID.z]];
    const uint nb = min(EB, V - e0);
    const uint sbase = p.state_off + (uint(run.slot) * H + h) * K * K;

    for (uint idx = tid; idx < K * EB; idx += 256u) {
        const uint d = idx / EB, el = idx % EB;
        Sb[idx] = 0.0;
        if (el < nb) Sb[idx] = state[sbase + d * K + e0 + el];
    }
    barrier();

    for (uint c0 = 0u; c0 < uint(run.n_tokens); c0 += C) {
        const uint n = min(C, uint(run.n_tokens) - c0), r0 = uint(run.first_row) + c0;
        #define WS(i) (((r0 + (i)) * H + h) * S)
        for (uint idx = tid; idx < n * EB; idx += 256u) {
            const uint i = idx / EB, el = idx % EB;
            float acc = 0.0;
            if (el < nb) {
                acc = ws[WS(i) + 2u * K + e0 + el];
                for (uint d = 0u; d < K; ++d) acc -= ws[WS(i) + K + d] * Sb[d * EB + el];
            }
            Vn[i * EB + el] = acc;
        }
        barrier();
        for (uint idx = tid; idx < n * EB; idx += 256u) {
            const uint i = idx / EB, el = idx % EB;
            if (el >= nb) continue;
            const uint row = r0 + i;
            float acc = 0.0;
            for (uint d = 0u; d < K; ++d) acc += exp(ws[WS(i) + d]) * act[row * 3u * D + h * K + d] * Sb[d * EB + el];
            for (uint j = 0u; j <= i; ++j) acc += ws[WS(i) + 2u * K + V + j] * Vn[j * EB + el];
            o[row * D + h * K + e0 + el] = acc;
        }
        barrier();
        for (uint idx = tid; idx < K * EB; idx += 256u) {
            const uint d = idx / EB, el = idx % EB;
            const float g_last = ws[WS(n - 1u) + d];
            float acc = exp(g_last) * Sb[idx];
            for (uint j = 0u; j < n; ++j)
                acc += exp(g_last - ws[WS(j) + d]) * act[(r0 + j) * 3u * D + D + h * K + d] * Vn[j * EB + el];
            Sb[idx] = acc;
        }
        barrier();
    }

    for (uint idx = tid; idx < K * EB; idx += 256u) {
        const uint d = idx / EB, el = idx % EB;
        if (el < nb) state[sbase + d * K + e0 + el] = Sb[idx];
    }
}
