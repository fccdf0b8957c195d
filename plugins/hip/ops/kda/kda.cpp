// kda on HIP: the projections as matrix products into the op workspace, then one kernel per stage (kda.hip): decay
// gate and beta, short convolutions, q/k normalisation, the recurrence (token by token, or chunkwise-parallel in two
// kernels, kda_chunked.hip), gated RMSNorm; then the output projection. The same math as ops/reference/kda.cpp.
#include "plugins/hip/ops/kda/kda.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "plugins/hip/ops/linear/matmul.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

namespace {

constexpr int32_t kAutoChunkedFrom = 32;  // automatic form: runs this long or longer use the chunked form

// A small vector weight (dt_bias, a_log, o_norm) of any float dtype as one row of n values.
WeightView vector_view(const Tensor& t, int64_t n, const char* what) {
    if (t.quantized()) unsupported("kda", std::string("a quantized ") + what + " " + shape_string(t));
    if (t.numel() != n) throw Error(std::string("kda: ") + what + " " + shape_string(t) + " should have " +
                                    std::to_string(n) + " values");
    WeightView w = weight_view(t, "kda");
    w.rows = 1;
    w.cols = n;
    return w;
}

// A projection weight [rows, cols] of any format.
WeightView projection(const Tensor& t, int64_t rows, int64_t cols, const char* what) {
    const WeightView w = weight_view(t, "kda");
    if (w.rows != rows || w.cols != cols)
        throw Error(std::string("kda: ") + what + " " + shape_string(t) + " should be [" + std::to_string(rows) + ", " +
                    std::to_string(cols) + "]");
    return w;
}

// A depthwise conv weight [D, 1, W] as a [D, W] view.
WeightView conv_view(const Tensor& t, int64_t D, int64_t W, const char* what) {
    if (t.quantized()) unsupported("kda", std::string("a quantized ") + what + " " + shape_string(t));
    if (t.numel() != D * W || t.cols() != W)
        throw Error(std::string("kda: ") + what + " " + shape_string(t) + " should be [" + std::to_string(D) + ", 1, " +
                    std::to_string(W) + "]");
    WeightView w = weight_view(t, "kda");
    w.rows = D;
    return w;
}

}  // namespace

void kda(Context& c, const KdaParams& p, const SeqBatch& batch) {
    const KdaWeights& w = p.w;
    const int64_t H = p.n_heads, K = p.head_dim, D = H * K, W = p.conv_width, T = batch.n_rows;
    if (p.x.dtype != DType::f32 || p.out.dtype != DType::f32) unsupported("kda", "activations other than F32");
    if (p.state.dtype != DType::f32 || p.conv_state.dtype != DType::f32)
        unsupported("kda", "a recurrent or conv state other than F32");
    if (K < 1 || K > kKdaMaxHeadDim)
        unsupported("kda", "head_dim " + std::to_string(K) + " (the kernels take 1.." + std::to_string(kKdaMaxHeadDim) + ")");
    if (W < 1 || W > kKdaMaxConvWidth)
        unsupported("kda", "conv width " + std::to_string(W) + " (the kernels take 1.." +
                               std::to_string(kKdaMaxConvWidth) + ")");
    if (p.form == KdaForm::chunked && p.chunk_size < 1) throw Error("kda: chunk_size must be at least 1");
    if (T == 0 || batch.n_runs == 0) return;
    const int64_t hidden = p.x.cols();
    if (p.x.rows() != T || p.out.rows() != T || p.out.cols() != hidden)
        throw Error("kda: x " + shape_string(p.x) + " and out " + shape_string(p.out) + " should be [" +
                    std::to_string(T) + ", hidden] for a batch of " + std::to_string(T) + " rows");
    const int64_t slots = p.state.numel() / std::max<int64_t>(1, H * K * K);
    if (p.state.numel() != slots * H * K * K || p.conv_state.numel() != slots * 3 * (W - 1) * D)
        throw Error("kda: state " + shape_string(p.state) + " and conv_state " + shape_string(p.conv_state) +
                    " should be [slots, " + std::to_string(H) + ", " + std::to_string(K) + ", " + std::to_string(K) +
                    "] and [slots, 3, " + std::to_string(W - 1) + ", " + std::to_string(D) + "]");

    const int64_t Rf = w.f_a.rows(), Rg = w.g_a.rows();
    const WeightView q_proj = projection(w.q_proj, D, hidden, "q_proj"), k_proj = projection(w.k_proj, D, hidden, "k_proj"),
                     v_proj = projection(w.v_proj, D, hidden, "v_proj"), f_a = projection(w.f_a, Rf, hidden, "f_a"),
                     f_b = projection(w.f_b, D, Rf, "f_b"), b_proj = projection(w.b_proj, H, hidden, "b_proj"),
                     g_a = projection(w.g_a, Rg, hidden, "g_a"), g_b = projection(w.g_b, D, Rg, "g_b"),
                     o_proj = projection(w.o_proj, hidden, D, "o_proj");
    const WeightView q_conv = conv_view(w.q_conv, D, W, "q_conv"), k_conv = conv_view(w.k_conv, D, W, "k_conv"),
                     v_conv = conv_view(w.v_conv, D, W, "v_conv");
    const WeightView dt_bias = vector_view(w.dt_bias, D, "dt_bias"), a_log = vector_view(w.a_log, H, "a_log"),
                     o_norm = vector_view(w.o_norm, K, "o_norm");

    // Which runs take which form (both compute the same function); the chunked kernels hold K <= 128.
    const int32_t C = std::clamp(p.chunk_size, 1, kKdaMaxChunk);
    std::vector<KdaRun> all, rec_runs, chunk_runs;
    std::vector<KdaChunk> chunks;
    for (int32_t i = 0; i < batch.n_runs; ++i) {
        const SeqRun& r = batch.runs[i];
        if (r.slot < 0 || r.slot >= slots || r.n_tokens < 1 || r.first_row < 0 || r.first_row + r.n_tokens > T)
            throw Error("kda: run " + std::to_string(i) + " (rows " + std::to_string(r.first_row) + " + " +
                        std::to_string(r.n_tokens) + ", slot " + std::to_string(r.slot) + ") is outside the batch's " +
                        std::to_string(T) + " rows or the state's " + std::to_string(slots) + " slots");
        const KdaRun run{r.first_row, r.n_tokens, r.slot};
        all.push_back(run);
        const bool chunked = K <= kKdaMaxChunkedHeadDim &&
                             (p.form == KdaForm::chunked || (p.form == KdaForm::automatic && r.n_tokens >= kAutoChunkedFrom));
        (chunked ? chunk_runs : rec_runs).push_back(run);
        if (chunked)
            for (int32_t t = 0; t < r.n_tokens; t += C) chunks.push_back({r.first_row + t, std::min(C, r.n_tokens - t)});
    }

    KdaDims d;
    d.rows = int32_t(T);
    d.heads = int32_t(H);
    d.head_dim = int32_t(K);
    d.conv_w = int32_t(W);
    d.chunk = C;
    d.stride = int32_t(3 * K + C);
    d.q_scale = float(1.0 / std::sqrt(double(K)));
    d.l2_eps = p.l2_eps;
    d.norm_eps = p.norm_eps;

    c.ws.begin_op();
    float* act = c.ws.take<float>(T * 3 * D);  // pre-conv q | k | v, then (in place) the activations
    float* gate = c.ws.take<float>(T * D);
    float* ogate = c.ws.take<float>(T * D);
    float* o = c.ws.take<float>(T * D);
    float* beta = c.ws.take<float>(T * H);
    float* low = c.ws.take<float>(T * std::max(Rf, Rg));  // the low-rank gate inputs, f then g
    float* record = chunks.empty() ? nullptr : c.ws.take<float>(T * H * d.stride);
    const KdaRun* all_d = c.ws.upload(all.data(), int64_t(all.size()));
    const KdaRun* rec_d = rec_runs.empty() ? nullptr : c.ws.upload(rec_runs.data(), int64_t(rec_runs.size()));
    const KdaRun* chunk_runs_d = chunk_runs.empty() ? nullptr : c.ws.upload(chunk_runs.data(), int64_t(chunk_runs.size()));
    const KdaChunk* chunks_d = chunks.empty() ? nullptr : c.ws.upload(chunks.data(), int64_t(chunks.size()));

    const float* x = ptr<const float>(p.x);
    matmul(c, x, hidden, T, q_proj, act, 3 * D);
    matmul(c, x, hidden, T, k_proj, act + D, 3 * D);
    matmul(c, x, hidden, T, v_proj, act + 2 * D, 3 * D);
    matmul(c, x, hidden, T, b_proj, beta, H);
    matmul(c, x, hidden, T, f_a, low, Rf);
    matmul(c, low, Rf, T, f_b, gate, D);
    matmul(c, x, hidden, T, g_a, low, Rg);
    matmul(c, low, Rg, T, g_b, ogate, D);

    const Launch l = c.launch();
    launch_kda_gate(l, d, gate, beta, dt_bias, a_log);
    launch_kda_conv(l, d, all_d, int32_t(all.size()), act, ptr<float>(p.conv_state), q_conv, k_conv, v_conv);
    launch_kda_l2norm(l, d, act);
    float* state = ptr<float>(p.state);
    launch_kda_recurrent(l, d, rec_d, int32_t(rec_runs.size()), act, gate, beta, state, o);
    launch_kda_chunk_prep(l, d, chunks_d, int32_t(chunks.size()), act, gate, beta, record);
    launch_kda_chunk_state(l, d, chunk_runs_d, int32_t(chunk_runs.size()), act, record, state, o);
    launch_kda_out_norm(l, d, o, ogate, o_norm);
    matmul(c, o, D, T, o_proj, ptr<float>(p.out), hidden);
}

}  // namespace halo::hip
