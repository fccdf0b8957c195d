// CPU MLA (no rotary), always in the absorbed form: queries are folded into the latent space (q_abs = W_UK^T q),
// attention runs over the latent cache page by page with an online softmax, and W_UV is applied to the context.
// All heads of a token share every cache read. Long contexts with few query rows are split across threads.
#include <algorithm>
#include <cmath>
#include <limits>

#include "plugins/cpu/context.h"

namespace halo::cpu {

using namespace halo::ops;

void mla(CpuContext& c, const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    const int64_t H = p.n_heads, dn = p.qk_nope_dim, dr = p.qk_rope_dim, dv = p.v_dim, r = p.kv_lora_rank;
    const int64_t dq = dn + dr, dkv = dn + dv, width = r + dr, T = batch.n_rows, hidden = p.x.cols();
    const int64_t ps = p.page_size;
    const Kernels& k = c.k;
    const int threads = c.pool.size();
    c.arena.reset();
    float* q = c.arena.floats(T * H * dq);
    float* ckv = c.arena.floats(T * width);
    float* qc = c.arena.floats(T * H * width);  // absorbed queries: [t][h][q_abs (r) | q_rot (dr)]
    float* ctxv = c.arena.floats(T * H * r);    // attention-weighted latents
    float* o = c.arena.floats(T * H * dv);
    float* norm_w = c.arena.floats(r);

    const float* x = p.x.host_as<float>();
    c.matmul(T, x, hidden, w.q_proj, q, H * dq);
    c.matmul(T, x, hidden, w.kv_a, ckv, width);
    k.to_f32(w.kv_a_norm.host(), w.kv_a_norm.dtype, norm_w, r);

    // Normalise the latents and append them to each sequence's cache.
    char* cache = static_cast<char*>(p.cache.host());
    const size_t es = dtype_size(p.cache.dtype);
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        if (int64_t(run.n_pages) * ps < run.pos + run.n_tokens)
            throw Error("mla: sequence page table too short for " + std::to_string(run.pos + run.n_tokens) + " tokens");
    }
    c.pool.run(T, [&](int64_t t, int) {
        float* row = ckv + t * width;
        const float inv = 1.0f / std::sqrt(k.sum_squares(row, r) / float(r) + p.kv_norm_eps);
        for (int64_t e = 0; e < r; ++e) row[e] *= inv * norm_w[e];
    });
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        for (int32_t i = 0; i < run.n_tokens; ++i) {
            const int64_t pos = run.pos + i;
            char* dst = cache + (int64_t(run.pages[pos / ps]) * ps + pos % ps) * width * int64_t(es);
            const float* src = ckv + (run.first_row + i) * width;
            for (int64_t e = 0; e < width; ++e) store_from_f32(dst, p.cache.dtype, size_t(e), src[e]);
        }
    }

    // q_abs = W_UK[h]^T q_nope for every (token, head); q_rot copied beside it.
    c.pool.run(H, [&](int64_t h, int thread) {
        float* pk = c.pack[size_t(thread)].data();
        pk = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(pk) + 63) & ~uintptr_t(63));
        Matrix wuk = CpuContext::row_block(w.kv_b, h * dkv, dn);  // stored [dn][r]: the right operand as-is
        wuk.rows = r;
        wuk.cols = dn;
        wuk.ld = r;
        wuk.kn = true;
        k.matmul(T, q + h * dq, H * dq, wuk, 0, r, qc + h * width, H * width, false, pk);
        for (int64_t t = 0; t < T; ++t)
            std::copy(q + t * H * dq + h * dq + dn, q + t * H * dq + h * dq + dq, qc + (t * H + h) * width + r);
    });

    // Attention tasks: (run, group of tokens, context split). A group's rows are all heads of its tokens.
    struct Task {
        const SeqRun* run;
        int64_t t0, t1;        // tokens of the run in this group
        int64_t page0, page1;  // pages this task reads
        float* part;           // [rows][r + 2] partial (acc, max, sum) when split, else null
    };
    const int64_t tokens_per_group = std::max<int64_t>(1, 64 / H);
    std::vector<Task> tasks;
    int64_t groups = 0;
    for (int32_t s = 0; s < batch.n_runs; ++s) groups += (batch.runs[s].n_tokens + tokens_per_group - 1) / tokens_per_group;
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        for (int64_t t0 = 0; t0 < run.n_tokens; t0 += tokens_per_group) {
            const int64_t t1 = std::min<int64_t>(run.n_tokens, t0 + tokens_per_group);
            const int64_t pages = (run.pos + t1 + ps - 1) / ps;
            const int64_t splits = std::clamp<int64_t>((threads * 2 + groups - 1) / groups, 1, pages);
            for (int64_t sp = 0; sp < splits; ++sp)
                tasks.push_back({&run, t0, t1, pages * sp / splits, pages * (sp + 1) / splits,
                                 splits > 1 ? c.arena.floats((t1 - t0) * H * (r + 2)) : nullptr});
        }
    }
    const int64_t max_rows = tokens_per_group * H;
    const int64_t ws_floats = max_rows * ps + max_rows * (r + 2) + 64;
    float* workspace = c.arena.floats(threads * ws_floats);
    const float neg_inf = -std::numeric_limits<float>::infinity();

    c.pool.run(int64_t(tasks.size()), [&](int64_t ti, int thread) {
        const Task& task = tasks[size_t(ti)];
        const SeqRun& run = *task.run;
        const int64_t rows = (task.t1 - task.t0) * H;
        float* pk = c.pack[size_t(thread)].data();
        pk = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(pk) + 63) & ~uintptr_t(63));
        float* scores = workspace + thread * ws_floats;  // [rows][ps]
        float* acc = task.part ? task.part : scores + max_rows * ps;  // [rows][r + 2]: acc, max, sum
        for (int64_t i = 0; i < rows; ++i) {
            std::fill(acc + i * (r + 2), acc + i * (r + 2) + r, 0.0f);
            acc[i * (r + 2) + r] = neg_inf;
            acc[i * (r + 2) + r + 1] = 0.0f;
        }
        const float* qrows = qc + (run.first_row + task.t0) * H * width;
        for (int64_t pg = task.page0; pg < task.page1; ++pg) {
            const int64_t j0 = pg * ps, n_valid = std::min(ps, run.pos + task.t1 - j0);
            if (n_valid <= 0) break;
            const char* lat = cache + int64_t(run.pages[pg]) * ps * width * int64_t(es);
            const Matrix keys{lat, p.cache.dtype, n_valid, width, width, false};
            k.matmul(rows, qrows, width, keys, 0, n_valid, scores, ps, false, pk);
            for (int64_t i = 0; i < rows; ++i) {
                const int64_t limit = run.pos + task.t0 + i / H;  // last position this row may see
                float* s = scores + i * ps;
                float mx = neg_inf;
                for (int64_t j = 0; j < n_valid; ++j) {
                    s[j] = j0 + j <= limit ? s[j] * p.softmax_scale : neg_inf;
                    mx = std::max(mx, s[j]);
                }
                float* a = acc + i * (r + 2);
                if (mx == neg_inf) {  // nothing visible in this page for this row
                    std::fill(s, s + n_valid, 0.0f);
                    continue;
                }
                const float m_new = std::max(a[r], mx);
                const float alpha = a[r] == neg_inf ? 0.0f : std::exp(a[r] - m_new);
                float sum = 0;
                for (int64_t j = 0; j < n_valid; ++j) {
                    s[j] = s[j] == neg_inf ? 0.0f : std::exp(s[j] - m_new);
                    sum += s[j];
                }
                k.scale(a, alpha, r);
                a[r] = m_new;
                a[r + 1] = a[r + 1] * alpha + sum;
            }
            const Matrix values{lat, p.cache.dtype, r, n_valid, width, true};
            k.matmul(rows, scores, ps, values, 0, r, acc, r + 2, true, pk);
        }
        if (!task.part)
            for (int64_t i = 0; i < rows; ++i) {
                const float* a = acc + i * (r + 2);
                float* dst = ctxv + ((run.first_row + task.t0) * H + i) * r;
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
                float m = -std::numeric_limits<float>::infinity();
                for (size_t t = i; t < j; ++t) m = std::max(m, tasks[t].part[row * (r + 2) + r]);
                float* dst = ctxv + ((tasks[i].run->first_row + tasks[i].t0) * H + row) * r;
                std::fill(dst, dst + r, 0.0f);
                float total = 0;
                for (size_t t = i; t < j; ++t) {
                    const float* a = tasks[t].part + row * (r + 2);
                    if (a[r] == -std::numeric_limits<float>::infinity()) continue;
                    const float f = std::exp(a[r] - m);
                    k.axpy(f, a, dst, r);
                    total += f * a[r + 1];
                }
                k.scale(dst, total > 0 ? 1.0f / total : 0.0f, r);
            }
        }
        i = j;
    }

    // o_h = W_UV[h] ctx_h, then the output projection.
    c.pool.run(H, [&](int64_t h, int thread) {
        float* pk = c.pack[size_t(thread)].data();
        pk = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(pk) + 63) & ~uintptr_t(63));
        const Matrix wuv = CpuContext::row_block(w.kv_b, h * dkv + dn, dv);
        k.matmul(T, ctxv + h * r, H * r, wuv, 0, dv, o + h * dv, H * dv, false, pk);
    });
    c.matmul(T, o, H * dv, w.o_proj, p.out.host_as<float>(), p.out.cols());
}

}  // namespace halo::cpu
