// Pieces of the CPU MLA op shared by its two attention forms (mla.cpp, mla_absorbed.cpp, mla_expanded.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "plugins/cpu/context.h"

namespace halo::cpu {

struct MlaDims {
    int64_t H, dn, dr, dv, r;  // heads, nope/rope query widths, value width, latent rank
    int64_t dq, dkv, width;    // dn + dr, dn + dv (rows of kv_b per head), r + dr (a cache row)
    int64_t ps;                // tokens per cache page
    explicit MlaDims(const ops::MlaParams& p)
        : MlaDims(p.n_heads, p.qk_nope_dim, p.qk_rope_dim, p.v_dim, p.kv_lora_rank, p.page_size) {}
    explicit MlaDims(const ops::StepShape& s)
        : MlaDims(s.mla_heads, s.mla_nope_dim, s.mla_rope_dim, s.mla_v_dim, s.mla_rank, s.page_size) {}
    MlaDims(int64_t H_, int64_t dn_, int64_t dr_, int64_t dv_, int64_t r_, int64_t ps_)
        : H(H_), dn(dn_), dr(dr_), dv(dv_), r(r_), dq(dn + dr), dkv(dn + dv), width(r + dr), ps(ps_) {}
};

// Multiply-adds per cached token for n new tokens: the absorbed form attends in the latent space (2r + dr per
// head and token); the expanded form pays the expansion of the token ((dn + dv) r per head) once, then attends in
// the head space (dn + dr + dv). The form a run of n tokens takes.
inline bool use_expanded(ops::MlaForm form, const MlaDims& d, int64_t n) {
    if (form != ops::MlaForm::automatic) return form == ops::MlaForm::expanded;
    return d.dkv * d.r + n * (d.dq + d.dv) < n * (2 * d.r + d.dr);
}

// Start of the cache row of a run's token at absolute position pos.
inline const char* cache_row(const ops::MlaParams& p, const MlaDims& d, const ops::SeqRun& run, int64_t pos) {
    return static_cast<const char*>(p.cache.host()) +
           (int64_t(run.pages[pos / d.ps]) * d.ps + pos % d.ps) * d.width * int64_t(ops::dtype_size(p.cache.dtype));
}

// One online-softmax step for one query row over a block of scores s[0, n) at positions j0.. : positions after
// `limit` are masked, the row's accumulator a[0, width) is rescaled to the new running max, and s is turned into
// the unnormalised probabilities to add (P V) afterwards. a[width] holds the running max, a[width + 1] the sum.
inline void online_softmax_step(const Kernels& k, float* s, int64_t n, int64_t j0, int64_t limit, float scale,
                                float* a, int64_t width) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    float mx = neg_inf;
    for (int64_t j = 0; j < n; ++j) {
        s[j] = j0 + j <= limit ? s[j] * scale : neg_inf;
        mx = std::max(mx, s[j]);
    }
    if (mx == neg_inf) {  // nothing visible in this block for this row
        std::fill(s, s + n, 0.0f);
        return;
    }
    const float m_new = std::max(a[width], mx);
    const float alpha = a[width] == neg_inf ? 0.0f : std::exp(a[width] - m_new);
    for (int64_t j = 0; j < n; ++j) s[j] -= m_new;  // masked positions stay -inf, and exp gives them 0
    k.exp(s, s, n);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += s[j];
    k.scale(a, alpha, width);
    a[width] = m_new;
    a[width + 1] = a[width + 1] * alpha + sum;
}

// online_softmax_step for R (<= 32) query rows held transposed: s[j * 32 + i] is row i's score against position
// j0 + j (j < n); positions after limit[i] are masked. Row i's accumulator is acc + i * lda (width values, then the
// running max and sum). Lanes i >= R are ignored (their s entries become 0).
inline void online_softmax_step32(const Kernels& k, float* s, int64_t n, int64_t j0, const int64_t* limit, int64_t R,
                                  float scale, float* acc, int64_t lda, int64_t width) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    float mx[32], sub[32], sum[32];
    int64_t last[32];  // the last visible j of each lane (-1: none)
    for (int i = 0; i < 32; ++i) {
        mx[i] = neg_inf;
        sum[i] = 0.0f;
        last[i] = i < R ? limit[i] - j0 : -1;
    }
    for (int64_t j = 0; j < n; ++j)
        for (int i = 0; i < 32; ++i) {
            const float v = j <= last[i] ? s[j * 32 + i] * scale : neg_inf;
            s[j * 32 + i] = v;
            mx[i] = std::max(mx[i], v);
        }
    for (int i = 0; i < 32; ++i) {
        const float m_new = i < R ? std::max(acc[i * lda + width], mx[i]) : neg_inf;
        sub[i] = m_new == neg_inf ? 0.0f : m_new;
    }
    for (int64_t j = 0; j < n; ++j)
        for (int i = 0; i < 32; ++i) s[j * 32 + i] -= sub[i];  // masked positions stay -inf, and exp gives them 0
    k.exp(s, s, n * 32);
    for (int64_t j = 0; j < n; ++j)
        for (int i = 0; i < 32; ++i) sum[i] += s[j * 32 + i];
    for (int64_t i = 0; i < R; ++i) {
        if (mx[i] == neg_inf) continue;  // nothing visible in this block for this row
        float* a = acc + i * lda;
        const float m_new = sub[i];
        const float alpha = a[width] == neg_inf ? 0.0f : std::exp(a[width] - m_new);
        if (alpha != 1.0f) k.scale(a, alpha, width);
        a[width] = m_new;
        a[width + 1] = a[width + 1] * alpha + sum[i];
    }
}

// Resets a row accumulator for online_softmax_step.
inline void online_softmax_reset(float* a, int64_t width) {
    std::fill(a, a + width, 0.0f);
    a[width] = -std::numeric_limits<float>::infinity();
    a[width + 1] = 0.0f;
}

// The temporaries of each part of the op, taken from `a` (the arena, or an ArenaCounter when planning); each part
// is defined beside its code.
struct MlaTemps {
    float *q, *ckv, *o, *norm_w;  // [T, H, dq], [T, width], [T, H, dv], [r]
};
template <class A>
MlaTemps mla_temps(A& a, const MlaDims& d, int64_t T) {
    MlaTemps t;
    t.q = a.floats(T * d.H * d.dq);
    t.ckv = a.floats(T * d.width);
    t.o = a.floats(T * d.H * d.dv);
    t.norm_w = a.floats(d.r);
    return t;
}

struct ExpandedTemps {
    float* lat;        // [ps, width] one page of latents as f32
    float* kv;         // [ps, H, dkv] the page expanded: [token][h][k_nope (dn) | v (dv)]
    float* acc;        // [n, H, dv + 2] value accumulator, running max, running sum
    float* workspace;  // [threads, ws_floats]: keys of one head [ps, dq], scores [n, ps]
    int64_t ws_floats;
};
template <class A>
ExpandedTemps expanded_temps(A& a, const MlaDims& d, int64_t n, int threads) {
    ExpandedTemps t;
    t.lat = a.floats(d.ps * d.width);
    t.kv = a.floats(d.ps * d.H * d.dkv);
    t.acc = a.floats(n * d.H * (d.dv + 2));
    t.ws_floats = d.ps * d.dq + n * d.ps + 64;
    t.workspace = a.floats(threads * t.ws_floats);
    return t;
}

// One task of the absorbed form: a group of a run's tokens against a span of its pages.
struct AbsorbedTask {
    size_t run;
    int64_t t0, t1;        // tokens of the run in this group
    int64_t page0, page1;  // pages this task reads
    float* part;           // [rows][r + 2] partial (acc, max, sum) when the group's context is split, else null
    // When the group's context is split: its query rows transposed in blocks of 32 ([blocks][width][32]), shared by
    // its splits and written before them; else null (the task transposes them into its workspace).
    float* qt;
};
// Floats of a group's query rows transposed in blocks of 32 (rows: all heads of its tokens).
inline int64_t transposed_rows_floats(const MlaDims& d, int64_t rows) { return (rows + 31) / 32 * d.width * 32; }
struct AbsorbedTemps {
    std::vector<int64_t> row_base;  // run i's tokens start at row row_base[i] of qc and ctxv
    float* qc;                      // [rows][H][q_abs (r) | q_rot (dr)]
    float* ctxv;                    // [rows][H][r] attended latents
    std::vector<AbsorbedTask> tasks;
    int64_t max_rows;               // rows of the largest task (all heads of its tokens)
    // [threads, ws_floats]: the query rows of a task whose context is not split, transposed in blocks of 32
    // [blocks][width][32], scores of one block of cached rows [kAbsorbedBlock][32], those rows as f32 [kAbsorbedBlock][width] (F16/BF16 caches), and the
    // accumulators [max_rows][r + 2] of a task whose context is not split.
    float* workspace;
    int64_t ws_floats, ws_scores, ws_rows, ws_acc;  // offsets in a thread's workspace
};
// Cached rows attended at a time by the absorbed form.
constexpr int64_t kAbsorbedBlock = 64;
// Tasks: (run, group of tokens, context split). A group's context is split into spans of a fixed number of pages,
// so how a row's softmax is summed depends on its own sequence only, never on what else is in the batch: a
// sequence decodes to the same bits alone or batched. Spans of >= 512 positions keep a split worth its combine.
// Fills t (its vectors are cleared, keeping their storage: a decode step allocates nothing once one has run).
template <class A>
void absorbed_temps(A& a, const MlaDims& d, const std::vector<const ops::SeqRun*>& runs, int threads, AbsorbedTemps& t) {
    t.row_base.clear();
    t.tasks.clear();
    int64_t n_rows = 0;
    for (const ops::SeqRun* run : runs) {
        t.row_base.push_back(n_rows);
        n_rows += run->n_tokens;
    }
    t.qc = a.floats(n_rows * d.H * d.width);
    t.ctxv = a.floats(n_rows * d.H * d.r);
    const int64_t tokens_per_group = std::max<int64_t>(1, 256 / d.H);
    const int64_t pages_per_split = std::max<int64_t>(1, (512 + d.ps - 1) / d.ps);
    for (size_t ri = 0; ri < runs.size(); ++ri) {
        const ops::SeqRun& run = *runs[ri];
        for (int64_t t0 = 0; t0 < run.n_tokens; t0 += tokens_per_group) {
            const int64_t t1 = std::min<int64_t>(run.n_tokens, t0 + tokens_per_group);
            const int64_t pages = (run.pos + t1 + d.ps - 1) / d.ps;
            const int64_t splits = std::max<int64_t>(1, (pages + pages_per_split - 1) / pages_per_split);
            float* qt = splits > 1 ? a.floats(transposed_rows_floats(d, (t1 - t0) * d.H)) : nullptr;
            for (int64_t sp = 0; sp < splits; ++sp)
                t.tasks.push_back({ri, t0, t1, pages * sp / splits, pages * (sp + 1) / splits,
                                   splits > 1 ? a.floats((t1 - t0) * d.H * (d.r + 2)) : nullptr, qt});
        }
    }
    t.max_rows = tokens_per_group * d.H;
    t.ws_scores = transposed_rows_floats(d, t.max_rows);
    t.ws_rows = t.ws_scores + kAbsorbedBlock * 32;
    t.ws_acc = t.ws_rows + (kAbsorbedBlock * d.width + 15) / 16 * 16;
    t.ws_floats = t.ws_acc + t.max_rows * (d.r + 2) + 16;
    t.workspace = a.floats(threads * t.ws_floats);
}

// Attention for the given runs, writing o rows [first_row, first_row + n_tokens) x [H * dv] of each.
// q: [rows][H][dq] projected queries of the whole step.
void mla_absorbed(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const std::vector<const ops::SeqRun*>& runs,
                  const float* q, float* o);
void mla_expanded(CpuContext& c, const ops::MlaParams& p, const MlaDims& d, const ops::SeqRun& run, const float* q,
                  float* o);

}  // namespace halo::cpu
