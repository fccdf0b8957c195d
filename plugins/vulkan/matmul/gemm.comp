#version 450
// Tiled matrix product for prefill: each workgroup computes a 64 x 64 tile of y (rows x output columns), stepping
// through K in slices of 16 held in shared memory; each invocation owns a 4 x 4 block. Grid: (ceil(n / 64),
// ceil(rows / 64), batches).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/matmul/matmul_shared.h"

#define BM 64u
#define BN 64u
#define BK 16u

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { MatmulPush p; };
layout(binding = 0) readonly buffer X { float x[]; };
HALO_TENSOR_RO(1, w)
layout(binding = 2) buffer Y { float y[]; };

shared float xs[BK][BM + 4u];  // x tile, k-major
shared float ws[BK][BN + 4u];  // W tile, k-major

void main() {
    const uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM, z = gl_WorkGroupID.z;
    const uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
    const uint xbase = p.x_off + z * p.x_bs, wbase = p.w_off + z * p.w_bs;
    float acc[4][4];
    for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        for (uint i = 0u; i < 4u; ++i) {
            const uint idx = t + i * 256u;  // 64 rows x 16 k
            const uint row = idx / BK, kk = idx % BK, k = k0 + kk;
            float xv = 0.0, wv = 0.0;
            if (m0 + row < p.rows && k < p.k) xv = x[xbase + (m0 + row) * p.ld_x + k];
            if (n0 + row < p.n && k < p.k) wv = w_load(wbase + (n0 + row) * p.ld_w + k, p.w_dtype);
            xs[kk][row] = xv;
            ws[kk][row] = wv;
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
