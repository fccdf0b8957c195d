// Reference Kimi Delta Attention (KIMI_LINEAR.md section 3).
//
// Per row t (x_t = layer input after input_layernorm), with H heads of K channels, D = H*K:
//   qp, kp, vp = x_t Wq^T, x_t Wk^T, x_t Wv^T                                   [D] each
//   q, k, v    = silu(causal depthwise conv over the last W pre-conv values)    (history from conv_state)
//   g[h,d]     = -exp(A_log[h]) * softplus((x_t Wfa^T) Wfb^T + dt_bias)        per-key-channel log decay
//   beta[h]    = sigmoid(x_t Wb^T)
//   q_h        = q_h / sqrt(|q_h|^2 + l2_eps) * K^-0.5 ;  k_h = k_h / sqrt(|k_h|^2 + l2_eps)
//   per head:  S = diag(exp(g)) S ;  u = beta (v - k^T S) ;  S = S + k u^T ;  o = q^T S   (S is [K][V], F32 state)
//   o_h        = o_h * rsqrt(mean(o_h^2) + norm_eps) * o_norm * sigmoid((x_t Wga^T) Wgb^T)_h
//   out_t      = o Wo^T
// The chunked form computes the same recurrence chunk by chunk (section 3.7) and is checked against it.
#include <cmath>
#include <vector>

#include "ops/reference/reference.h"
#include "ops/reference/util.h"

namespace halo::ref {

using namespace halo::ops;

namespace {

// Per-run working set for one head: rows are the run's tokens.
struct HeadInputs {
    int n = 0, K = 0;
    std::vector<double> q, k, v, g;  // [n][K] (q already L2-normalised and scaled; k normalised)
    std::vector<double> beta;        // [n]
};

// State S [K][K] of one head, updated in place; o receives [n][K].
void recurrent(const HeadInputs& in, std::vector<double>& S, std::vector<double>& o) {
    const int K = in.K;
    std::vector<double> pred(K), u(K);
    for (int t = 0; t < in.n; ++t) {
        const double* q = &in.q[size_t(t) * K];
        const double* k = &in.k[size_t(t) * K];
        const double* v = &in.v[size_t(t) * K];
        const double* g = &in.g[size_t(t) * K];
        for (int d = 0; d < K; ++d) {
            const double a = std::exp(g[d]);
            for (int e = 0; e < K; ++e) S[size_t(d) * K + e] *= a;
        }
        for (int e = 0; e < K; ++e) {
            double acc = 0;
            for (int d = 0; d < K; ++d) acc += k[d] * S[size_t(d) * K + e];
            pred[e] = acc;
        }
        for (int e = 0; e < K; ++e) u[e] = in.beta[t] * (v[e] - pred[e]);
        for (int d = 0; d < K; ++d)
            for (int e = 0; e < K; ++e) S[size_t(d) * K + e] += k[d] * u[e];
        for (int e = 0; e < K; ++e) {
            double acc = 0;
            for (int d = 0; d < K; ++d) acc += q[d] * S[size_t(d) * K + e];
            o[size_t(t) * K + e] = acc;
        }
    }
}

// Chunkwise-parallel form. Only exp(G_i - G_j) with j <= i is ever evaluated, so nothing overflows.
void chunked(const HeadInputs& in, int chunk, std::vector<double>& S, std::vector<double>& o) {
    const int K = in.K;
    for (int c0 = 0; c0 < in.n; c0 += chunk) {
        const int C = std::min(chunk, in.n - c0);
        auto q = [&](int i, int d) { return in.q[size_t(c0 + i) * K + d]; };
        auto k = [&](int i, int d) { return in.k[size_t(c0 + i) * K + d]; };
        auto v = [&](int i, int e) { return in.v[size_t(c0 + i) * K + e]; };
        std::vector<double> G(size_t(C) * K);  // inclusive cumulative log decay
        for (int i = 0; i < C; ++i)
            for (int d = 0; d < K; ++d)
                G[size_t(i) * K + d] = in.g[size_t(c0 + i) * K + d] + (i ? G[size_t(i - 1) * K + d] : 0.0);
        auto decay = [&](int i, int j, int d) { return std::exp(G[size_t(i) * K + d] - G[size_t(j) * K + d]); };

        // A[i][j] = beta_i sum_d k_i k_j exp(G_i - G_j), j < i; solve (I + A) U = diag(beta) V and
        // (I + A) Wm = diag(beta) (exp(G) * k) by forward substitution.
        std::vector<double> A(size_t(C) * C, 0.0), U(size_t(C) * K), Wm(size_t(C) * K);
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < i; ++j) {
                double acc = 0;
                for (int d = 0; d < K; ++d) acc += k(i, d) * k(j, d) * decay(i, j, d);
                A[size_t(i) * C + j] = in.beta[c0 + i] * acc;
            }
        for (int i = 0; i < C; ++i)
            for (int d = 0; d < K; ++d) {
                double u = in.beta[c0 + i] * v(i, d);
                double w = in.beta[c0 + i] * std::exp(G[size_t(i) * K + d]) * k(i, d);
                for (int j = 0; j < i; ++j) {
                    u -= A[size_t(i) * C + j] * U[size_t(j) * K + d];
                    w -= A[size_t(i) * C + j] * Wm[size_t(j) * K + d];
                }
                U[size_t(i) * K + d] = u;
                Wm[size_t(i) * K + d] = w;
            }
        // V' = U - Wm S0
        std::vector<double> Vn(size_t(C) * K);
        for (int i = 0; i < C; ++i)
            for (int e = 0; e < K; ++e) {
                double acc = U[size_t(i) * K + e];
                for (int d = 0; d < K; ++d) acc -= Wm[size_t(i) * K + d] * S[size_t(d) * K + e];
                Vn[size_t(i) * K + e] = acc;
            }
        // O_i = (exp(G_i) q_i)^T S0 + sum_{j<=i} (sum_d q_i k_j exp(G_i - G_j)) V'_j
        for (int i = 0; i < C; ++i) {
            std::vector<double> aqk(size_t(i) + 1);
            for (int j = 0; j <= i; ++j) {
                double acc = 0;
                for (int d = 0; d < K; ++d) acc += q(i, d) * k(j, d) * decay(i, j, d);
                aqk[size_t(j)] = acc;
            }
            for (int e = 0; e < K; ++e) {
                double acc = 0;
                for (int d = 0; d < K; ++d) acc += std::exp(G[size_t(i) * K + d]) * q(i, d) * S[size_t(d) * K + e];
                for (int j = 0; j <= i; ++j) acc += aqk[size_t(j)] * Vn[size_t(j) * K + e];
                o[size_t(c0 + i) * K + e] = acc;
            }
        }
        // S = diag(exp(G_last)) S0 + sum_j (exp(G_last - G_j) k_j) V'_j^T
        for (int d = 0; d < K; ++d) {
            const double a = std::exp(G[size_t(C - 1) * K + d]);
            for (int e = 0; e < K; ++e) {
                double acc = a * S[size_t(d) * K + e];
                for (int j = 0; j < C; ++j) acc += decay(C - 1, j, d) * k(j, d) * Vn[size_t(j) * K + e];
                S[size_t(d) * K + e] = acc;
            }
        }
    }
}

}  // namespace

void kda(const KdaParams& p, const SeqBatch& batch) {
    const KdaWeights& w = p.w;
    const int H = p.n_heads, K = p.head_dim, D = H * K, W = p.conv_width;
    if (p.chunk_size < 1 && p.form == KdaForm::chunked) throw Error("kda: chunk_size must be at least 1");
    const int64_t rows = batch.n_rows, hidden = p.x.cols(), rank_f = w.f_a.rows(), rank_g = w.g_a.rows();

    // Row-wise projections: pre-conv q, k, v, the decay gate, beta and the output gate.
    std::vector<double> pre(size_t(rows) * 3 * D), gate(size_t(rows) * D), beta(size_t(rows) * H),
        ogate(size_t(rows) * D);
    {
        std::vector<double> low_f(static_cast<size_t>(rank_f)), low_g(static_cast<size_t>(rank_g));
        for (int64_t r = 0; r < rows; ++r) {
            std::vector<double> x = row(p.x, r);
            matvec(w.q_proj, x.data(), &pre[size_t(r * 3 + 0) * D]);
            matvec(w.k_proj, x.data(), &pre[size_t(r * 3 + 1) * D]);
            matvec(w.v_proj, x.data(), &pre[size_t(r * 3 + 2) * D]);
            matvec(w.f_a, x.data(), low_f.data());
            matvec(w.f_b, low_f.data(), &gate[size_t(r) * D]);
            for (int c = 0; c < D; ++c) {
                const int h = c / K;
                gate[size_t(r) * D + c] =
                    -std::exp(at(w.a_log, h)) * softplus(gate[size_t(r) * D + c] + at(w.dt_bias, c));
            }
            matvec(w.b_proj, x.data(), &beta[size_t(r) * H]);
            for (int h = 0; h < H; ++h) beta[size_t(r) * H + h] = sigmoid(beta[size_t(r) * H + h]);
            matvec(w.g_a, x.data(), low_g.data());
            matvec(w.g_b, low_g.data(), &ogate[size_t(r) * D]);
        }
    }

    std::vector<double> o_all(size_t(rows) * D);
    const Tensor* conv_w[3] = {&w.q_conv, &w.k_conv, &w.v_conv};
    float* conv_state = p.conv_state.host_as<float>();
    float* state = p.state.host_as<float>();
    const double q_scale = 1.0 / std::sqrt(double(K));

    for (int s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        const int n = run.n_tokens;
        // Short convolutions: sequence = W-1 history values, then this run's n values.
        std::vector<double> act(size_t(n) * 3 * D);  // post-conv, post-SiLU q, k, v
        for (int which = 0; which < 3; ++which) {
            float* hist = conv_state + (size_t(run.slot) * 3 + which) * size_t(W - 1) * D;
            for (int c = 0; c < D; ++c) {
                std::vector<double> seq(size_t(W - 1 + n));
                for (int j = 0; j < W - 1; ++j) seq[size_t(j)] = hist[size_t(j) * D + c];
                for (int t = 0; t < n; ++t) seq[size_t(W - 1 + t)] = pre[size_t((run.first_row + t) * 3 + which) * D + c];
                for (int t = 0; t < n; ++t) {
                    double y = 0;
                    for (int j = 0; j < W; ++j) y += at(*conv_w[which], int64_t(c) * W + j) * seq[size_t(t + j)];
                    act[size_t(t * 3 + which) * D + c] = silu(y);
                }
                for (int j = 0; j < W - 1; ++j) hist[size_t(j) * D + c] = float(seq[size_t(n + j)]);
            }
        }

        for (int h = 0; h < H; ++h) {
            HeadInputs in;
            in.n = n;
            in.K = K;
            in.q.resize(size_t(n) * K);
            in.k.resize(size_t(n) * K);
            in.v.resize(size_t(n) * K);
            in.g.resize(size_t(n) * K);
            in.beta.resize(static_cast<size_t>(n));
            for (int t = 0; t < n; ++t) {
                const double* a = &act[size_t(t) * 3 * D];
                double qq = 0, kk = 0;
                for (int d = 0; d < K; ++d) {
                    qq += a[h * K + d] * a[h * K + d];
                    kk += a[D + h * K + d] * a[D + h * K + d];
                }
                const double qn = q_scale / std::sqrt(qq + double(p.l2_eps)), kn = 1.0 / std::sqrt(kk + double(p.l2_eps));
                for (int d = 0; d < K; ++d) {
                    in.q[size_t(t) * K + d] = a[h * K + d] * qn;
                    in.k[size_t(t) * K + d] = a[D + h * K + d] * kn;
                    in.v[size_t(t) * K + d] = a[2 * D + h * K + d];
                    in.g[size_t(t) * K + d] = gate[size_t(run.first_row + t) * D + h * K + d];
                }
                in.beta[size_t(t)] = beta[size_t(run.first_row + t) * H + h];
            }
            float* Sf = state + (size_t(run.slot) * H + h) * size_t(K) * K;
            std::vector<double> S(Sf, Sf + size_t(K) * K), o(size_t(n) * K);
            const bool use_chunks = p.form == KdaForm::chunked || (p.form == KdaForm::automatic && n > p.chunk_size);
            if (use_chunks)
                chunked(in, p.chunk_size, S, o);
            else
                recurrent(in, S, o);
            for (size_t i = 0; i < S.size(); ++i) Sf[i] = float(S[i]);
            for (int t = 0; t < n; ++t)
                for (int d = 0; d < K; ++d) o_all[size_t(run.first_row + t) * D + h * K + d] = o[size_t(t) * K + d];
        }
    }

    // Gated RMSNorm per head, then the output projection.
    std::vector<double> y(static_cast<size_t>(hidden));
    for (int64_t r = 0; r < rows; ++r) {
        double* o = &o_all[size_t(r) * D];
        for (int h = 0; h < H; ++h) {
            double ss = 0;
            for (int d = 0; d < K; ++d) ss += o[h * K + d] * o[h * K + d];
            const double inv = 1.0 / std::sqrt(ss / K + double(p.norm_eps));
            for (int d = 0; d < K; ++d)
                o[h * K + d] = o[h * K + d] * inv * at(w.o_norm, d) * sigmoid(ogate[size_t(r) * D + h * K + d]);
        }
        matvec(w.o_proj, o, y.data());
        store_row(p.out, r, y.data());
    }
}

}  // namespace halo::ref
