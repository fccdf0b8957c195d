// CPU MLA (no rotary): projections, the latent cache append, and the choice of attention form per sequence.
// Absorbed (mla_absorbed.cpp): queries folded into the latent space, attention over the cache as stored; cheapest
// for few new tokens (decode). Expanded (mla_expanded.cpp): cached latents expanded to per-head keys and values
// page by page; cheapest for long prefill chunks. Both are the reference's function.
#include <cmath>

#include "plugins/cpu/mla_internal.h"

namespace halo::cpu {

using namespace halo::ops;

int64_t mla_arena(const StepShape& s, const std::vector<SeqRun>& runs, int threads) {
    const MlaDims d(s);
    ArenaCounter a;
    int64_t T = 0;
    for (const SeqRun& run : runs) T += run.n_tokens;
    mla_temps(a, d, T);
    std::vector<const SeqRun*> absorbed;
    for (const SeqRun& run : runs) {
        if (use_expanded(s.mla_form, d, run.n_tokens))
            expanded_temps(a, d, run.n_tokens, threads);
        else
            absorbed.push_back(&run);
    }
    AbsorbedTemps t;
    if (!absorbed.empty()) absorbed_temps(a, d, absorbed, threads, t);
    return a.used;
}

namespace {

// The engine thread's list of runs for the absorbed form, kept between calls (see kept_absorbed_temps in
// mla_absorbed.cpp).
std::vector<const SeqRun*>& kept_absorbed_runs() {
    static thread_local std::vector<const SeqRun*> runs;
    return runs;
}

}  // namespace

void mla(CpuContext& c, const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    const MlaDims d(p);
    const int64_t T = batch.n_rows, hidden = p.x.cols();
    const Kernels& k = c.k;
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        if (int64_t(run.n_pages) * d.ps < run.pos + run.n_tokens)
            throw Error("mla: sequence page table too short for " + std::to_string(run.pos + run.n_tokens) + " tokens");
    }
    c.arena.reset();
    const MlaTemps tmp = mla_temps(c.arena, d, T);
    float *q = tmp.q, *ckv = tmp.ckv, *o = tmp.o, *norm_w = tmp.norm_w;

    const float* x = p.x.host_as<float>();
    c.matmul(&batch, T, x, hidden, w.q_proj, q, d.H * d.dq);
    c.matmul(&batch, T, x, hidden, w.kv_a, ckv, d.width);
    k.to_f32(w.kv_a_norm.host(), w.kv_a_norm.dtype, norm_w, d.r);

    // Normalise the latents and append them to each sequence's cache.
    c.pool.run(T, [&](int64_t t, int) {
        float* row = ckv + t * d.width;
        const float inv = 1.0f / std::sqrt(k.sum_squares(row, d.r) / float(d.r) + p.kv_norm_eps);
        for (int64_t e = 0; e < d.r; ++e) row[e] *= inv * norm_w[e];
    });
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        for (int32_t i = 0; i < run.n_tokens; ++i) {
            void* dst = const_cast<char*>(cache_row(p, d, run, run.pos + i));
            const float* src = ckv + (run.first_row + i) * d.width;
            for (int64_t e = 0; e < d.width; ++e) store_from_f32(dst, p.cache.dtype, size_t(e), src[e]);
        }
    }

    std::vector<const SeqRun*>& absorbed = kept_absorbed_runs();  // kept between calls: no allocation per step
    absorbed.clear();
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        if (use_expanded(p.form, d, run.n_tokens))
            mla_expanded(c, p, d, run, q, o);
        else
            absorbed.push_back(&run);
    }
    if (!absorbed.empty()) mla_absorbed(c, p, d, absorbed, q, o);
    c.matmul(&batch, T, o, d.H * d.dv, w.o_proj, p.out.host_as<float>(), p.out.cols());
}

}  // namespace halo::cpu
