#version 450
// Tiled matrix product for prefill: each workgroup computes a 64 x 64 tile of y (rows x output columns), stepping
// through K in slices of 16 held in shared memory; each invocation owns a 4 x 4 block. With p.wide the W slice is
// read as 128 runs of 8 elements (weight_at8: whole words, one scale per run), else element by element.
// Grid: (ceil(n / 64), ceil(rows / 64), batches).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/matmul/matmul_shared.h"
#define WEIGHT_BINDING 1
#define WEIGHT_SLOTS 2
#include "plugins/vulkan/matmul/weights.glsl"

#define BM 64u
#define BN 64u
#define BK 16u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MatmulPush p; };
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };

shared float xs[BK][BM + 4u];  // x tile, k-major
shared float ws[BK][BN + 4u];  // W tile, k-major

void main() {
    const uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM, z = gl_WorkGroupID.z;
    const uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
    const uint xbase = p.x_off + z * p.x_bs;
    float acc[4][4];
    for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        for (uint i = 0u; i < 4u; ++i) {
            const uint idx = t + i * 256u;  // 64 rows x 16 k
            const uint row = idx / BK, kk = idx % BK, k = k0 + kk;
            float xv = 0.0;
            if (m0 + row < p.rows && k < p.k) xv = x[xbase + (m0 + row) * p.ld_x + k];
            xs[kk][row] = xv;
            if (p.wide == 0u) ws[kk][row] = n0 + row < p.n && k < p.k ? weight_at(p.w, z, n0 + row, k) : 0.0;
        }
        if (p.wide != 0u && t < 128u) {  // K is a multiple of 8 here: a run is wholly inside or outside the row
            const uint row = t / 2u, k8 = (t % 2u) * 8u;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (n0 + row < p.n && k0 + k8 < p.k) weight_at8(p.w, z, n0 + row, (k0 + k8) / 8u, lo, hi);
            for (uint j = 0u; j < 4u; ++j) {
                ws[k8 + j][row] = lo[j];
                ws[k8 + 4u + j][row] = hi[j];
            }
        }
        barrier();
        for (uint kk = 0u; kk < BK; ++kk) {
            float a[4], b[4];
            for (uint i = 0u; i < 4u; ++i) {
                a[i] = xs[kk][ty + 16u * i];
                b[i] = ws[kk][tx + 16u * i];
            }
            for (uint i = 0u; i < 4u; ++i)
                for (uint j = 0u; j < 4u; ++j) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; ++i) {
        const uint m = m0 + ty + 16u * i;
        if (m >= p.rows) continue;
        for (uint j = 0u; j < 4u; ++j) {
            const uint n = n0 + tx + 16u * j;
            if (n >= p.n) continue;
            const uint yi = p.y_off + z * p.y_bs + m * p.ld_y + n;
            y[yi] = p.accumulate != 0u ? y[yi] + acc[i][j] : acc[i][j];
        }
    }
}
