// Expanded MLA attention for one sequence: each cache page's latents are expanded to per-head keys (k_nope, plus
// the shared k_rot) and values with kv_b, then every head attends with an online softmax over the pages. The
// expansion costs (dn + dv) * r per head and cached token once per call, so it pays off for long runs of new tokens.
#include <algorithm>
#include <cmath>
#include <limits>

#include "plugins/cpu/mla_internal.h"

namespace halo::cpu {

using namespace halo::ops;

void mla_expanded(CpuContext& c, const MlaParams& p, const MlaDims& d, const SeqRun& run, const float* q, float* o) {
    const Kernels& k = c.k;
    const int threads = c.pool.size();
    const int64_t H = d.H, n = run.n_tokens, ctx = run.pos + n, ps = d.ps, dq = d.dq, dv = d.dv;

    const ExpandedTemps tmp = expanded_temps(c.arena, d, n, threads);
    float *lat = tmp.lat, *kv = tmp.kv, *acc = tmp.acc, *workspace = tmp.workspace;
    const int64_t ws_floats = tmp.ws_floats;
    for (int64_t i = 0; i < n * H; ++i) online_softmax_reset(acc + i * (dv + 2), dv);
    const Matrix kv_b = CpuContext::as_matrix(p.w.kv_b);

    for (int64_t j0 = 0; j0 < ctx; j0 += ps) {
        const int64_t nv = std::min(ps, ctx - j0);
        // The first token that may see this page: rows before it skip the page entirely.
        const int64_t first_row = std::max<int64_t>(0, j0 - run.pos);
        if (first_row >= n) break;
        const char* page = cache_row(p, d, run, j0);
        k.to_f32(page, p.cache.dtype, lat, nv * d.width);
        c.matmul(nv, lat, d.width, kv_b, kv, H * d.dkv);

        c.pool.run(H, [&](int64_t h, int thread) {
            float* keys = workspace + thread * ws_floats;  // [nv][dq]: k_nope of head h, then the shared k_rot
            float* scores = keys + ps * dq;                // [n][ps]
            float* pk = c.pack_buffer(thread);
            for (int64_t j = 0; j < nv; ++j) {
                std::copy(kv + (j * H + h) * d.dkv, kv + (j * H + h) * d.dkv + d.dn, keys + j * dq);
                std::copy(lat + j * d.width + d.r, lat + (j + 1) * d.width, keys + j * dq + d.dn);
            }
            const int64_t rows = n - first_row;
            const float* qh = q + (run.first_row + first_row) * H * dq + h * dq;
            const Matrix key_matrix{keys, DType::f32, nv, dq, dq, false};
            k.matmul(rows, qh, H * dq, key_matrix, 0, nv, scores, ps, false, pk);
            for (int64_t i = 0; i < rows; ++i)
                online_softmax_step(k, scores + i * ps, nv, j0, run.pos + first_row + i, p.softmax_scale,
                                    acc + ((first_row + i) * H + h) * (dv + 2), dv);
            // acc += P V_h, with V_h read in place from the expanded page ([nv][H][dkv], values after k_nope).
            const Matrix values{kv + h * d.dkv + d.dn, DType::f32, dv, nv, H * d.dkv, true};
            k.matmul(rows, scores, ps, values, 0, dv, acc + (first_row * H + h) * (dv + 2), H * (dv + 2), true, pk);
        });
    }
    for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h) {
            const float* a = acc + (i * H + h) * (dv + 2);
            float* dst = o + (run.first_row + i) * H * dv + h * dv;
            const float inv = a[dv + 1] > 0 ? 1.0f / a[dv + 1] : 0.0f;
            for (int64_t e = 0; e < dv; ++e) dst[e] = a[e] * inv;
        }
}

}  // namespace halo::cpu
