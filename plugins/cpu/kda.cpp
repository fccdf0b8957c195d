// CPU KDA: the projections, then one task per (sequence, head) for everything between them: the head's causal conv
// channels, decay gate, beta and L2 norms, the delta rule (recurrent for short runs, chunkwise-parallel for long ones:
// ops/reference/kda.cpp, KIMI_LINEAR.md 3.7) and the gated RMSNorm. A decode step is then three parallel loops (the
// projections that read x, the low-rank gates' second halves, the head tasks) before the output projection.
#include <algorithm>
#include <cmath>

#include "plugins/cpu/context.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

struct HeadView {
    const float* q;  // row t at q + t * stride (normalised, scaled)
    const float* k;
    const float* v;
    const float* g;  // log decay, row t at g + t * g_stride
    const float* beta;  // beta of row t at beta[t * beta_stride]
    float* o;           // output row t at o + t * o_stride
    int64_t stride, g_stride, beta_stride, o_stride;
    int64_t n;
};

void recurrent(const Kernels& k, const HeadView& h, int64_t K, float* S, float* decay) {
    for (int64_t t = 0; t < h.n; ++t) {
        k.exp(h.g + t * h.g_stride, decay, K);
        k.delta_step(S, K, K, h.q + t * h.stride, h.k + t * h.stride, h.v + t * h.stride, decay,
                     h.beta[t * h.beta_stride], h.o + t * h.o_stride);
    }
}

// Floats of per-thread workspace the chunked form needs.
int64_t chunk_workspace(int64_t C, int64_t K) { return 6 * C * K + 2 * C * C + 2 * K + 64; }

void chunked(const Kernels& k, const HeadView& h, int64_t K, int64_t C, float* S, float* ws, float* pack) {
    const int64_t V = K;
    float* G = ws;             // [C][K] inclusive cumulative log decay
    float* U = G + C * K;      // [C][V]
    float* Wm = U + C * V;     // [C][K], negated
    float* Qe = Wm + C * K;    // [C][K]
    float* KdT = Qe + C * K;   // [K][C]
    float* tmp = KdT + K * C;  // [C][K]
    float* A = tmp + C * K;    // [C][C]
    float* Aqk = A + C * C;    // [C][C]
    float* e = Aqk + C * C;    // [K]
    float* pair = e + K;       // [2]
    for (int64_t c0 = 0; c0 < h.n; c0 += C) {
        const int64_t n = std::min(C, h.n - c0);
        auto q = [&](int64_t i) { return h.q + (c0 + i) * h.stride; };
        auto kk = [&](int64_t i) { return h.k + (c0 + i) * h.stride; };
        auto v = [&](int64_t i) { return h.v + (c0 + i) * h.stride; };
        for (int64_t i = 0; i < n; ++i) {
            const float* g = h.g + (c0 + i) * h.g_stride;
            for (int64_t d = 0; d < K; ++d) G[i * K + d] = g[d] + (i ? G[(i - 1) * K + d] : 0.0f);
        }
        // Pair terms, j <= i only, so every exponent is <= 0.
        std::fill(Aqk, Aqk + n * n, 0.0f);
        for (int64_t i = 0; i < n; ++i) {
            const float beta = h.beta[(c0 + i) * h.beta_stride];
            for (int64_t j = 0; j <= i; ++j) {
                k.pair_dots(G + i * K, G + j * K, kk(i), kk(j), q(i), K, pair);
                A[i * n + j] = beta * pair[0];
                Aqk[i * n + j] = pair[1];
            }
        }
        // Forward substitution: (I + A) U = diag(beta) V and (I + A) Wm = diag(beta) (exp(G) * k); Wm kept negated.
        for (int64_t i = 0; i < n; ++i) {
            const float beta = h.beta[(c0 + i) * h.beta_stride];
            k.exp(G + i * K, e, K);
            for (int64_t d = 0; d < K; ++d) {
                U[i * V + d] = beta * v(i)[d];
                Wm[i * K + d] = -beta * e[d] * kk(i)[d];
                Qe[i * K + d] = e[d] * q(i)[d];
            }
            for (int64_t j = 0; j < i; ++j) {
                k.axpy(-A[i * n + j], U + j * V, U + i * V, V);
                k.axpy(-A[i * n + j], Wm + j * K, Wm + i * K, K);
            }
        }
        const Matrix s_kn{S, DType::f32, V, K, V, true};   // S as the right operand: y = x S
        const Matrix vn_kn{U, DType::f32, V, n, V, true};  // V' (stored in U) as the right operand
        // V' = U - Wm S0  (Wm is negated)
        k.matmul(n, Wm, K, s_kn, 0, V, U, V, true, pack);
        // O = (exp(G) q) S0 + Aqk V'
        for (int64_t i = 0; i < n; ++i) std::fill(h.o + (c0 + i) * h.o_stride, h.o + (c0 + i) * h.o_stride + V, 0.0f);
        k.matmul(n, Qe, K, s_kn, 0, V, h.o + c0 * h.o_stride, h.o_stride, false, pack);
        k.matmul(n, Aqk, n, vn_kn, 0, V, h.o + c0 * h.o_stride, h.o_stride, true, pack);
        // S = diag(exp(G_last)) S0 + sum_j (exp(G_last - G_j) k_j) V'_j^T
        const float* g_last = G + (n - 1) * K;
        for (int64_t j = 0; j < n; ++j) {
            for (int64_t d = 0; d < K; ++d) tmp[d] = g_last[d] - G[j * K + d];
            k.exp(tmp, tmp, K);
            for (int64_t d = 0; d < K; ++d) KdT[d * n + j] = tmp[d] * kk(j)[d];
        }
        k.exp(g_last, e, K);
        for (int64_t d = 0; d < K; ++d) k.scale(S + d * V, e[d], V);
        k.matmul(K, KdT, n, vn_kn, 0, V, S, V, true, pack);
    }
}

// The op's temporaries, taken from `a` (the arena, or an ArenaCounter when planning). low_rank: rows of f_a / g_a.
struct KdaTemps {
    float* qkv;        // [T, 3D] pre-conv, then post-conv activations; row: q | k | v
    float *gate, *ogate, *o;  // [T, D]
    float* beta;       // [T, H]
    float *low_f, *low_g;     // [T, low_rank] each
    float* o_norm;     // [K]
    float* workspace;  // [threads, ws_floats]: the chunked form's, then the head's conv taps [3, K, W] and dt_bias [K]
    int64_t ws_floats, ws_head;  // ws_head: where the head's conv taps start
};
template <class A>
KdaTemps kda_temps(A& a, int64_t T, int64_t H, int64_t K, int64_t W, int64_t low_rank, int64_t C, int threads) {
    const int64_t D = H * K;
    KdaTemps t;
    t.qkv = a.floats(T * 3 * D);
    t.gate = a.floats(T * D);
    t.ogate = a.floats(T * D);
    t.beta = a.floats(T * H);
    t.low_f = a.floats(T * low_rank);
    t.low_g = a.floats(T * low_rank);
    t.o = a.floats(T * D);
    t.ws_head = (chunk_workspace(C, K) + K + 15) / 16 * 16;
    t.ws_floats = t.ws_head + 3 * K * W + K;
    t.workspace = a.floats(threads * t.ws_floats);
    t.o_norm = a.floats(K);
    return t;
}

}  // namespace

int64_t kda_arena(const StepShape& s, int64_t rows, int threads) {
    ArenaCounter a;
    kda_temps(a, rows, s.kda_heads, s.kda_head_dim, s.kda_conv_width, s.kda_head_dim,
              std::max<int32_t>(1, s.kda_chunk), threads);
    return a.used;
}

void kda(CpuContext& c, const KdaParams& p, const SeqBatch& batch) {
    const KdaWeights& w = p.w;
    const int64_t H = p.n_heads, K = p.head_dim, D = H * K, W = p.conv_width, T = batch.n_rows;
    const int64_t hidden = p.x.cols(), Rf = w.f_a.rows(), Rg = w.g_a.rows();
    if (K > 512) throw Error("cpu kda: head_dim " + std::to_string(K) + " is larger than the supported 512");
    if (W < 1 || W > 17) throw Error("cpu kda: conv width " + std::to_string(W) + " is outside the supported 1..17");
    const Kernels& k = c.k;
    c.arena.reset();
    const int threads = c.pool.size();
    const int64_t C = std::max<int32_t>(1, p.chunk_size);
    const KdaTemps tmp = kda_temps(c.arena, T, H, K, W, std::max(Rf, Rg), C, threads);
    float *qkv = tmp.qkv, *gate = tmp.gate, *ogate = tmp.ogate, *beta = tmp.beta, *o = tmp.o;
    float *low_f = tmp.low_f, *low_g = tmp.low_g, *workspace = tmp.workspace;
    const int64_t ws_floats = tmp.ws_floats;

    // The projections of x in one parallel loop, then the low-rank gates' second halves in another.
    const float* x = p.x.host_as<float>();
    using Product = CpuContext::Product;
    auto product = [](const float* in, int64_t ldx, const Tensor& wt, float* y, int64_t ldy) {
        return Product{in, ldx, CpuContext::as_matrix(wt), y, ldy};
    };
    const Product from_x[] = {product(x, hidden, w.q_proj, qkv, 3 * D),     product(x, hidden, w.k_proj, qkv + D, 3 * D),
                              product(x, hidden, w.v_proj, qkv + 2 * D, 3 * D), product(x, hidden, w.f_a, low_f, Rf),
                              product(x, hidden, w.g_a, low_g, Rg),          product(x, hidden, w.b_proj, beta, H)};
    c.matmul_group(&batch, T, from_x, 6);
    const Product from_low[] = {product(low_f, Rf, w.f_b, gate, D), product(low_g, Rg, w.g_b, ogate, D)};
    c.matmul_group(&batch, T, from_low, 2);
    float* o_norm = tmp.o_norm;
    k.to_f32(w.o_norm.host(), w.o_norm.dtype, o_norm, K);
    auto head_of = [](const Tensor& t, int64_t first, int64_t n, float* dst, const Kernels& kk) {
        kk.to_f32(static_cast<const char*>(t.host()) + size_t(first) * dtype_size(t.dtype), t.dtype, dst, n);
    };

    // Short convolutions + SiLU of channels [c0, c1) of q|k|v (at most 64) over a run, in place, oldest row first,
    // 32 rows at a time. taps: channel c0's W taps, then the next channel's. win holds the W-1 inputs before the
    // rows of the block (the history first, then the block before's last inputs), then the block's own inputs, one
    // row of 64 channels each, so every sum runs over channels in its inner loop.
    float* conv_state = p.conv_state.host_as<float>();
    constexpr int64_t kConvRows = 32;
    auto conv_block = [&](const SeqRun& run, int64_t c0, int64_t c1, const float* taps) {
        const int64_t n = run.n_tokens, nc = c1 - c0, which = c0 / D, cc = c0 % D;
        float tap[17][64];
        float win[16 + kConvRows][64];
        for (int64_t ch = 0; ch < nc; ++ch)
            for (int64_t j = 0; j < W; ++j) tap[j][ch] = taps[ch * W + j];
        float* history = conv_state + ((int64_t(run.slot) * 3 + which) * (W - 1)) * D + cc;
        for (int64_t j = 0; j < W - 1; ++j)
            for (int64_t ch = 0; ch < nc; ++ch) win[j][ch] = history[j * D + ch];
        for (int64_t t0 = 0; t0 < n; t0 += kConvRows) {
            const int64_t m = std::min(kConvRows, n - t0);
            for (int64_t i = 0; i < m; ++i) {
                const float* in = qkv + (run.first_row + t0 + i) * 3 * D + c0;
                for (int64_t ch = 0; ch < nc; ++ch) win[W - 1 + i][ch] = in[ch];
            }
            for (int64_t i = 0; i < m; ++i) {
                float y[64] = {};
                for (int64_t j = 0; j < W; ++j)
                    for (int64_t ch = 0; ch < nc; ++ch) y[ch] += tap[j][ch] * win[i + j][ch];
                float* out = qkv + (run.first_row + t0 + i) * 3 * D + c0;
                for (int64_t ch = 0; ch < nc; ++ch) out[ch] = silu(y[ch]);
            }
            for (int64_t j = 0; j < W - 1; ++j)  // the last W-1 inputs lead the next block
                for (int64_t ch = 0; ch < nc; ++ch) win[j][ch] = win[m + j][ch];
        }
        for (int64_t j = 0; j < W - 1; ++j)
            for (int64_t ch = 0; ch < nc; ++ch) history[j * D + ch] = win[j][ch];
    };

    // One task per (run, head): everything of the head from the projections to the output projection's input.
    const float q_scale = 1.0f / std::sqrt(float(K));
    float* state = p.state.host_as<float>();
    c.pool.run(int64_t(batch.n_runs) * H, [&](int64_t task, int thread) {
        const SeqRun& run = batch.runs[task / H];
        const int64_t h = task % H, t0 = run.first_row, t1 = run.first_row + run.n_tokens;
        float* ws = workspace + thread * ws_floats;

        // The head's channels of q, k and v through the short convolutions, 64 at a time.
        float* taps = ws + tmp.ws_head;  // [3][K][W]
        float* dt_bias = taps + 3 * K * W;
        const Tensor* conv[3] = {&w.q_conv, &w.k_conv, &w.v_conv};
        for (int which = 0; which < 3; ++which) {
            head_of(*conv[which], h * K * W, K * W, taps + which * K * W, k);
            for (int64_t b = 0; b < K; b += 64)
                conv_block(run, which * D + h * K + b, which * D + h * K + std::min(K, b + 64), taps + (which * K + b) * W);
        }

        // Decay gate and beta of the head's rows.
        head_of(w.dt_bias, h * K, K, dt_bias, k);
        float a_log = 0;
        head_of(w.a_log, h, 1, &a_log, k);
        const float a = std::exp(a_log);
        for (int64_t t = t0; t < t1; ++t) {
            float* g = gate + t * D + h * K;
            for (int64_t d = 0; d < K; ++d) {
                const float z = g[d] + dt_bias[d];
                const float sp = z > 20.0f ? z : std::log1p(std::exp(z));
                g[d] = -a * sp;
            }
            beta[t * H + h] = sigmoid(beta[t * H + h]);
        }

        // L2-normalise the head's q and k; q also takes the K^-0.5 scale.
        for (int64_t t = t0; t < t1; ++t) {
            float* q = qkv + t * 3 * D + h * K;
            float* kk = q + D;
            k.scale(q, q_scale / std::sqrt(k.sum_squares(q, K) + p.l2_eps), K);
            k.scale(kk, 1.0f / std::sqrt(k.sum_squares(kk, K) + p.l2_eps), K);
        }

        // The recurrence.
        HeadView v;
        v.q = qkv + run.first_row * 3 * D + h * K;
        v.k = v.q + D;
        v.v = v.q + 2 * D;
        v.stride = 3 * D;
        v.g = gate + run.first_row * D + h * K;
        v.g_stride = D;
        v.beta = beta + run.first_row * H + h;
        v.beta_stride = H;
        v.o = o + run.first_row * D + h * K;
        v.o_stride = D;
        v.n = run.n_tokens;
        float* S = state + (int64_t(run.slot) * H + h) * K * K;
        float* pk = c.pack_buffer(thread);
        const bool use_chunks = p.form == KdaForm::chunked || (p.form == KdaForm::automatic && run.n_tokens >= 32);
        if (use_chunks)
            chunked(k, v, K, C, S, ws, pk);
        else
            recurrent(k, v, K, S, ws);

        // Gated RMSNorm of the head's output rows, with a sigmoid gate.
        for (int64_t t = t0; t < t1; ++t) {
            float* oh = o + t * D + h * K;
            const float* gg = ogate + t * D + h * K;
            const float inv = 1.0f / std::sqrt(k.sum_squares(oh, K) / float(K) + p.norm_eps);
            for (int64_t d = 0; d < K; ++d) oh[d] = oh[d] * inv * o_norm[d] * sigmoid(gg[d]);
        }
    });
    c.matmul(&batch, T, o, D, w.o_proj, p.out.host_as<float>(), p.out.cols());
}

}  // namespace halo::cpu
