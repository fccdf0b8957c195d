// Absorbed MLA attention: q_abs = W_UK^T q_nope per head, scores against the cached latents as stored (any cache
// dtype), an online softmax page by page, then W_UV applied to the attended latent. All heads of a token share
// every cache read; long contexts with few query rows are split across threads and combined.
#include <algorithm>
#include <cmath>
#include <limits>

#include "plugins/cpu/mla_internal.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

// The engine thread's AbsorbedTemps, kept between calls. The loops below run on the pool's threads too: they reach
// it through references taken here, never by naming the thread_local (which would be each thread's own copy).
AbsorbedTemps& kept_absorbed_temps() {
    static thread_local AbsorbedTemps t;
    return t;
}

}  // namespace

void mla_absorbed(CpuContext& c, const MlaParams& p, const MlaDims& d, const std::vector<const SeqRun*>& runs,
                  const float* q, float* o) {
    const Kernels& k = c.k;
    const int threads = c.pool.size();
    const int64_t H = d.H, r = d.r, width = d.width, ps = d.ps;
    const float neg_inf = -std::numeric_limits<float>::infinity();

    // Rows of the chosen runs, compacted (run i's tokens start at row_base[i]), and the tasks.
    // Its vectors are kept between calls (no allocation per step).
    AbsorbedTemps& tmp = kept_absorbed_temps();
    absorbed_temps(c.arena, d, runs, threads, tmp);
    const std::vector<int64_t>& row_base = tmp.row_base;
    float *qc = tmp.qc, *ctxv = tmp.ctxv, *workspace = tmp.workspace;
    const std::vector<AbsorbedTask>& tasks = tmp.tasks;
    const int64_t max_rows = tmp.max_rows, ws_floats = tmp.ws_floats;

    // q_abs = W_UK[h]^T q_nope for every (token, head); q_rot copied beside it.
    c.pool.run(int64_t(runs.size()) * H, [&](int64_t task, int thread) {
        const size_t ri = size_t(task / H);
        const int64_t h = task % H, n = runs[ri]->n_tokens;
        const float* qs = q + runs[ri]->first_row * H * d.dq;
        float* dst = qc + row_base[ri] * H * width;
        Matrix wuk = CpuContext::row_block(p.w.kv_b, h * d.dkv, d.dn);  // stored [dn][r]: the right operand as-is
        wuk.rows = r;
        wuk.cols = d.dn;
        wuk.ld = r;
        wuk.kn = true;
        k.matmul(n, qs + h * d.dq, H * d.dq, wuk, 0, r, dst + h * width, H * width, false, c.pack_buffer(thread));
        for (int64_t t = 0; t < n; ++t)
            std::copy(qs + t * H * d.dq + h * d.dq + d.dn, qs + t * H * d.dq + (h + 1) * d.dq, dst + (t * H + h) * width + r);
    });

    c.pool.run(int64_t(tasks.size()), [&](int64_t ti, int thread) {
        const AbsorbedTask& task = tasks[size_t(ti)];
        const SeqRun& run = *runs[task.run];
        const int64_t rows = (task.t1 - task.t0) * H;
        float* pk = c.pack_buffer(thread);
        float* scores = workspace + thread * ws_floats;               // [rows][ps]
        float* acc = task.part ? task.part : scores + max_rows * ps;  // [rows][r + 2]: acc, max, sum
        for (int64_t i = 0; i < rows; ++i) online_softmax_reset(acc + i * (r + 2), r);
        const float* qrows = qc + (row_base[task.run] + task.t0) * H * width;
        for (int64_t pg = task.page0; pg < task.page1; ++pg) {
            const int64_t j0 = pg * ps, n_valid = std::min(ps, run.pos + task.t1 - j0);
            if (n_valid <= 0) break;
            const char* lat = cache_row(p, d, run, j0);
            const Matrix keys{lat, p.cache.dtype, n_valid, width, width, false};
            k.matmul(rows, qrows, width, keys, 0, n_valid, scores, ps, false, pk);
            for (int64_t i = 0; i < rows; ++i)  // row i is head i % H of token t0 + i / H
                online_softmax_step(k, scores + i * ps, n_valid, j0, run.pos + task.t0 + i / H, p.softmax_scale,
                                    acc + i * (r + 2), r);
            const Matrix values{lat, p.cache.dtype, r, n_valid, width, true};
            k.matmul(rows, scores, ps, values, 0, r, acc, r + 2, true, pk);
        }
        if (!task.part)
            for (int64_t i = 0; i < rows; ++i) {
                const float* a = acc + i * (r + 2);
                float* dst = ctxv + ((row_base[task.run] + task.t0) * H + i) * r;
                const float inv = a[r + 1] > 0 ? 1.0f / a[r + 1] : 0.0f;
                for (int64_t e = 0; e < r; ++e) dst[e] = a[e] * inv;
            }
    });

    // Combine the splits of each group.
    for (size_t i = 0; i < tasks.size();) {
        size_t j = i;
        while (j < tasks.size() && tasks[j].run == tasks[i].run && tasks[j].t0 == tasks[i].t0) ++j;
        if (tasks[i].part) {
            const int64_t rows = (tasks[i].t1 - tasks[i].t0) * H;
            for (int64_t row = 0; row < rows; ++row) {
                float m = neg_inf;
                for (size_t t = i; t < j; ++t) m = std::max(m, tasks[t].part[row * (r + 2) + r]);
                float* dst = ctxv + ((row_base[tasks[i].run] + tasks[i].t0) * H + row) * r;
                std::fill(dst, dst + r, 0.0f);
                float total = 0;
                for (size_t t = i; t < j; ++t) {
                    const float* a = tasks[t].part + row * (r + 2);
                    if (a[r] == neg_inf) continue;
                    const float f = std::exp(a[r] - m);
                    k.axpy(f, a, dst, r);
                    total += f * a[r + 1];
                }
                k.scale(dst, total > 0 ? 1.0f / total : 0.0f, r);
            }
        }
        i = j;
    }

    // o_h = W_UV[h] ctx_h into the runs' rows of o.
    c.pool.run(int64_t(runs.size()) * H, [&](int64_t task, int thread) {
        const size_t ri = size_t(task / H);
        const int64_t h = task % H;
        const Matrix wuv = CpuContext::row_block(p.w.kv_b, h * d.dkv + d.dn, d.dv);
        k.matmul(runs[ri]->n_tokens, ctxv + row_base[ri] * H * r + h * r, H * r, wuv, 0, d.dv,
                 o + runs[ri]->first_row * H * d.dv + h * d.dv, H * d.dv, false, c.pack_buffer(thread));
    });
}

}  // namespace halo::cpu
