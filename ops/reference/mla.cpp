// Reference MLA without rotary embedding (KIMI_LINEAR.md section 4).
//
// Per row t at absolute position p = run.pos + i:
//   q        = x_t Wq^T -> [H][dn + dr]      (q_nope = first dn, q_rot = last dr of each head)
//   [c, kr]  = x_t Wkva^T -> [r + dr]        c = RMSNorm(c, kv_norm_eps) * kv_a_norm ; kr shared by all heads
//   cache[p] = [c, kr]                        stored in the cache dtype; attention reads the stored values
//   expanded: k_nope_h,j = W_UK[h] c_j ; v_h,j = W_UV[h] c_j
//             s_h,j = (q_nope_h . k_nope_h,j + q_rot_h . kr_j) * scale ; o_h = sum_j softmax_j(s_h) v_h,j  (j <= p)
//   absorbed: q_abs_h = W_UK[h]^T q_nope_h ; s_h,j = (q_abs_h . c_j + q_rot_h . kr_j) * scale
//             o_h = W_UV[h] (sum_j softmax_j(s_h) c_j)
//   out_t    = concat_h(o_h) Wo^T
// with W_UK[h] = kv_b rows h*(dn+dv) .. +dn-1 and W_UV[h] = the next dv rows. Both forms are the same function.
#include <cmath>
#include <vector>

#include "ops/reference/reference.h"
#include "ops/reference/util.h"

namespace halo::ref {

using namespace halo::ops;

void mla(const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    const int H = p.n_heads, dn = p.qk_nope_dim, dr = p.qk_rope_dim, dv = p.v_dim, r = p.kv_lora_rank;
    const int dq = dn + dr, dkv = dn + dv, width = r + dr;
    const int64_t hidden = p.x.cols();
    void* cache = p.cache.host();

    // Cache element index of value e of the token at absolute position pos of a run.
    auto cache_index = [&](const SeqRun& run, int64_t pos, int e) {
        const int page = run.pages[pos / p.page_size];
        return (int64_t(page) * p.page_size + pos % p.page_size) * width + e;
    };
    auto kvb = [&](int h, int row, int col) { return at(w.kv_b, (int64_t(h) * dkv + row) * r + col); };

    for (int s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        if (int64_t(run.n_pages) * p.page_size < run.pos + run.n_tokens)
            throw Error("mla: sequence page table too short for " + std::to_string(run.pos + run.n_tokens) + " tokens");
        // Write this run's latents first; causality comes from the attention range below.
        std::vector<double> ckv(static_cast<size_t>(width));
        for (int i = 0; i < run.n_tokens; ++i) {
            std::vector<double> x = row(p.x, run.first_row + i);
            matvec(w.kv_a, x.data(), ckv.data());
            double ss = 0;
            for (int e = 0; e < r; ++e) ss += ckv[size_t(e)] * ckv[size_t(e)];
            const double inv = 1.0 / std::sqrt(ss / r + double(p.kv_norm_eps));
            for (int e = 0; e < r; ++e) ckv[size_t(e)] *= inv * at(w.kv_a_norm, e);
            for (int e = 0; e < width; ++e)
                store_from_f32(cache, p.cache.dtype, size_t(cache_index(run, run.pos + i, e)), float(ckv[size_t(e)]));
        }

        for (int i = 0; i < run.n_tokens; ++i) {
            const int64_t n_ctx = run.pos + i + 1;
            std::vector<double> x = row(p.x, run.first_row + i), q(size_t(H) * dq), o(size_t(H) * dv, 0.0);
            matvec(w.q_proj, x.data(), q.data());
            // Cached latents of positions 0..n_ctx-1 as doubles.
            std::vector<double> lat(size_t(n_ctx) * width);
            for (int64_t j = 0; j < n_ctx; ++j)
                for (int e = 0; e < width; ++e)
                    lat[size_t(j) * width + e] = load_as_f32(cache, p.cache.dtype, size_t(cache_index(run, j, e)));

            for (int h = 0; h < H; ++h) {
                const double* qn = &q[size_t(h) * dq];
                const double* qr = qn + dn;
                std::vector<double> score(static_cast<size_t>(n_ctx));
                const bool absorbed = p.form == MlaForm::absorbed || (p.form == MlaForm::automatic && run.n_tokens == 1);
                if (absorbed) {
                    std::vector<double> q_abs(size_t(r), 0.0);
                    for (int d = 0; d < dn; ++d)
                        for (int e = 0; e < r; ++e) q_abs[size_t(e)] += kvb(h, d, e) * qn[d];
                    for (int64_t j = 0; j < n_ctx; ++j) {
                        const double* c = &lat[size_t(j) * width];
                        double acc = 0;
                        for (int e = 0; e < r; ++e) acc += q_abs[size_t(e)] * c[e];
                        for (int e = 0; e < dr; ++e) acc += qr[e] * c[r + e];
                        score[size_t(j)] = acc * p.softmax_scale;
                    }
                } else {
                    for (int64_t j = 0; j < n_ctx; ++j) {
                        const double* c = &lat[size_t(j) * width];
                        double acc = 0;
                        for (int d = 0; d < dn; ++d) {
                            double kn = 0;
                            for (int e = 0; e < r; ++e) kn += kvb(h, d, e) * c[e];
                            acc += qn[d] * kn;
                        }
                        for (int e = 0; e < dr; ++e) acc += qr[e] * c[r + e];
                        score[size_t(j)] = acc * p.softmax_scale;
                    }
                }
                double mx = score[0];
                for (double v : score) mx = std::max(mx, v);
                double sum = 0;
                for (double& v : score) sum += (v = std::exp(v - mx));
                for (double& v : score) v /= sum;

                if (absorbed) {
                    std::vector<double> ctx(size_t(r), 0.0);
                    for (int64_t j = 0; j < n_ctx; ++j)
                        for (int e = 0; e < r; ++e) ctx[size_t(e)] += score[size_t(j)] * lat[size_t(j) * width + e];
                    for (int d = 0; d < dv; ++d) {
                        double acc = 0;
                        for (int e = 0; e < r; ++e) acc += kvb(h, dn + d, e) * ctx[size_t(e)];
                        o[size_t(h) * dv + d] = acc;
                    }
                } else {
                    for (int64_t j = 0; j < n_ctx; ++j) {
                        const double* c = &lat[size_t(j) * width];
                        for (int d = 0; d < dv; ++d) {
                            double vv = 0;
                            for (int e = 0; e < r; ++e) vv += kvb(h, dn + d, e) * c[e];
                            o[size_t(h) * dv + d] += score[size_t(j)] * vv;
                        }
                    }
                }
            }
            std::vector<double> y(static_cast<size_t>(hidden));
            matvec(w.o_proj, o.data(), y.data());
            store_row(p.out, run.first_row + i, y.data());
        }
    }
}

}  // namespace halo::ref
