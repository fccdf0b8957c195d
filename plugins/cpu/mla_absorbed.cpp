// Absorbed MLA attention: q_abs = W_UK^T q_nope per head, scores against the cached latents (F16/BF16 caches
// widened 64 rows at a time), an online softmax over blocks of 64 cached rows, then W_UV applied to the attended
// latent. The query rows (all heads of a token) are held transposed, 32 to a block, so the scores and the attended
// latents are outer products over the cached rows (Kernels::scores32 / attend32): every cached row is read once per
// block of 32 rows and no sum is reduced across lanes. Long contexts with few query rows are split across threads
// and combined.
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
    const int64_t ws_floats = tmp.ws_floats;

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

    // A group's rows (all heads of its tokens) transposed in blocks of 32, zero past the last row: qt [blocks][width][32].
    auto transpose_rows = [&](const AbsorbedTask& task, float* qt) {
        const int64_t rows = (task.t1 - task.t0) * H;
        const float* qrows = qc + (row_base[task.run] + task.t0) * H * width;
        for (int64_t b = 0; b < (rows + 31) / 32; ++b) {
            const int64_t R = std::min<int64_t>(32, rows - b * 32);
            float* qb = qt + b * width * 32;
            for (int64_t e = 0; e < width; ++e) {
                for (int64_t i = 0; i < R; ++i) qb[e * 32 + i] = qrows[(b * 32 + i) * width + e];
                for (int64_t i = R; i < 32; ++i) qb[e * 32 + i] = 0.0f;
            }
        }
    };
    // Groups whose context is split transpose their rows once, for all their splits.
    if (std::any_of(tasks.begin(), tasks.end(), [](const AbsorbedTask& t) { return t.qt != nullptr; }))
        c.pool.run(int64_t(tasks.size()), [&](int64_t ti, int) {
            const AbsorbedTask& task = tasks[size_t(ti)];
            if (task.qt && task.page0 == 0) transpose_rows(task, task.qt);  // the group's first split
        });

    // Each task, block by block of cached rows: the scores of every block of 32 query rows, the online softmax and
    // the attended latents (scores32 / attend32).
    const int64_t acc_ld = r + 2;
    c.pool.run(int64_t(tasks.size()), [&](int64_t ti, int thread) {
        const AbsorbedTask& task = tasks[size_t(ti)];
        const SeqRun& run = *runs[task.run];
        const int64_t rows = (task.t1 - task.t0) * H, blocks = (rows + 31) / 32;
        float* ws = workspace + thread * ws_floats;
        float* scores = ws + tmp.ws_scores;   // [kAbsorbedBlock][32]
        float* rows_f32 = ws + tmp.ws_rows;   // [kAbsorbedBlock][width]
        float* acc = task.part ? task.part : ws + tmp.ws_acc;  // [rows][r + 2]: acc, max, sum
        for (int64_t i = 0; i < rows; ++i) online_softmax_reset(acc + i * acc_ld, r);
        const float* qt = task.qt;  // [blocks][width][32]
        if (!qt) {
            transpose_rows(task, ws);
            qt = ws;
        }
        int64_t limit[32];
        for (int64_t pg = task.page0; pg < task.page1; ++pg) {
            const int64_t p0 = pg * ps, n_valid = std::min(ps, run.pos + task.t1 - p0);
            if (n_valid <= 0) break;
            for (int64_t j0 = 0; j0 < n_valid; j0 += kAbsorbedBlock) {
                const int64_t n = std::min(kAbsorbedBlock, n_valid - j0);
                const char* lat = cache_row(p, d, run, p0 + j0);
                const float* cached = reinterpret_cast<const float*>(lat);
                if (p.cache.dtype != DType::f32) {
                    k.to_f32(lat, p.cache.dtype, rows_f32, n * width);
                    cached = rows_f32;
                }
                for (int64_t b = 0; b < blocks; ++b) {
                    const int64_t R = std::min<int64_t>(32, rows - b * 32);
                    for (int64_t i = 0; i < R; ++i) limit[i] = run.pos + task.t0 + (b * 32 + i) / H;
                    float* acc_b = acc + b * 32 * acc_ld;
                    k.scores32(qt + b * width * 32, cached, width, width, n, scores);
                    online_softmax_step32(k, scores, n, p0 + j0, limit, R, p.softmax_scale, acc_b, acc_ld, r);
                    k.attend32(scores, R, cached, width, r, n, acc_b, acc_ld);
                }
            }
        }
        if (!task.part)
            for (int64_t i = 0; i < rows; ++i) {
                const float* a = acc + i * acc_ld;
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
