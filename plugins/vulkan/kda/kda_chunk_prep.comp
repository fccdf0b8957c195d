#version 450
// KDA chunked form, part 1 (independent of the state, so all chunks of all runs run in parallel). For one chunk
// of n <= 64 rows and one head, with G_i the inclusive cumulative log decay (KIMI_LINEAR.md 3.7):
//   A_ij   = beta_i sum_d k_i k_j exp(G_i - G_j)   (j < i)     Aqk_ij = sum_d q_i k_j exp(G_i - G_j)   (j <= i)
//   (I + A) U = diag(beta) V ;  (I + A) Wm = diag(beta) (exp(G) * k)      by forward substitution
// Only exp(G_i - G_j) with j <= i is evaluated (<= 1), so strong decay cannot overflow. Writes G, Wm, U, Aqk to the
// chunk workspace. Grid: (chunks, H).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

#define CMAX 64u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) readonly buffer Chunks { ivec2 chunks[]; };  // (first row, rows)
layout(binding = 1) readonly buffer Act { float act[]; };
layout(binding = 2) readonly buffer Gate { float gate[]; };
layout(binding = 3) readonly buffer Beta { float beta[]; };
layout(binding = 4) buffer Ws { float ws[]; };

shared float A[CMAX][CMAX + 1u];

void main() {
    const uint tid = gl_LocalInvocationID.x, h = gl_WorkGroupID.y;
    const ivec2 ch = chunks[gl_WorkGroupID.x];
    const uint r0 = uint(ch.x), n = uint(ch.y);
    const uint K = p.head_dim, V = K, D = p.width, H = p.heads, S = p.ws_stride;
    #define WS(i) (((r0 + (i)) * H + h) * S)
    #define Q(i, d) act[(r0 + (i)) * 3u * D + h * K + (d)]
    #define KK(i, d) act[(r0 + (i)) * 3u * D + D + h * K + (d)]

    for (uint d = tid; d < K; d += 256u) {
        float cum = 0.0;
        for (uint i = 0u; i < n; ++i) {
            cum += gate[(r0 + i) * D + h * K + d];
            ws[WS(i) + d] = cum;
        }
    }
    memoryBarrierBuffer();
    barrier();

    const uint pairs = n * (n + 1u) / 2u;
    for (uint idx = tid; idx < pairs; idx += 256u) {
        uint i = uint((sqrt(8.0 * float(idx) + 1.0) - 1.0) * 0.5);
        while (i * (i + 1u) / 2u > idx) --i;
        while ((i + 1u) * (i + 2u) / 2u <= idx) ++i;
        const uint j = idx - i * (i + 1u) / 2u;
        float skk = 0.0, sqk = 0.0;
        for (uint d = 0u; d < K; ++d) {
            const float dec = exp(ws[WS(i) + d] - ws[WS(j) + d]);
            const float kj = KK(j, d) * dec;
            skk += KK(i, d) * kj;
            sqk += Q(i, d) * kj;
        }
        A[i][j] = j < i ? beta[(r0 + i) * H + h] * skk : 0.0;
        ws[WS(i) + 2u * K + V + j] = sqk;
    }
    barrier();

    for (uint col = tid; col < V + K; col += 256u) {
        const bool is_u = col < V;
        const uint d = col - V;
        const uint at = is_u ? 2u * K + col : K + d;  // U or Wm column in the workspace
        for (uint i = 0u; i < n; ++i) {
            const float b = beta[(r0 + i) * H + h];
            float x = is_u ? b * act[(r0 + i) * 3u * D + 2u * D + h * K + col] : b * exp(ws[WS(i) + d]) * KK(i, d);
            for (uint j = 0u; j < i; ++j) x -= A[i][j] * ws[WS(j) + at];
            ws[WS(i) + at] = x;
        }
    }
}
