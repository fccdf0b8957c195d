// Vulkan KDA: projections as matrix products into the workspace, then one shader per stage: decay gate and beta,
// short convolutions, q/k normalisation, the recurrence (token by token for short runs, chunkwise-parallel in two
// passes for long ones), gated RMSNorm, output projection. The same math as ops/reference/kda.cpp.
#include <algorithm>
#include <cmath>

#include "plugins/vulkan/kda/kda_shared.h"
#include "plugins/vulkan/ops.h"

namespace halo::vk {

using namespace halo::ops;

namespace {

constexpr int32_t kMaxChunk = 64;        // chunk rows held in shared memory by kda_chunk_prep
constexpr int64_t kMaxChunkedK = 128;    // state block held in shared memory by kda_chunk_state
constexpr int32_t kAutoChunkedFrom = 32; // automatic form: runs this long or longer use the chunked form

}  // namespace

bool kda_chunked(const DeviceCaps& caps, KdaForm form, int64_t head_dim, int64_t n) {
    if (head_dim > kMaxChunkedK || caps.max_shared < 32768) return false;  // same function, recurrent form
    return form == KdaForm::chunked || (form == KdaForm::automatic && n >= kAutoChunkedFrom);
}

uint64_t kda_workspace(const DeviceCaps& caps, int64_t T, int64_t H, int64_t K, int64_t Rf, int64_t Rg, int32_t chunk,
                       bool chunked) {
    const int64_t D = H * K, C = std::clamp(chunk, 1, kMaxChunk);
    const uint64_t f = 4, a = caps.storage_align;
    const uint64_t ws_stride = uint64_t(2 * K + K + C);
    uint64_t need = workspace_cost(uint64_t(T * 3 * D) * f, a) * 2 + workspace_cost(uint64_t(T * D) * f, a) * 3 +
                    workspace_cost(uint64_t(T * H) * f, a) + workspace_cost(uint64_t(T * Rf) * f, a) +
                    workspace_cost(uint64_t(T * Rg) * f, a);
    if (chunked) need += workspace_cost(uint64_t(T * H) * ws_stride * f, a);
    return need;
}

void kda(Context& c, const KdaParams& p, const SeqBatch& batch) {
    const KdaWeights& w = p.w;
    const int64_t H = p.n_heads, K = p.head_dim, D = H * K, W = p.conv_width, T = batch.n_rows;
    const int64_t Rf = w.f_a.rows(), Rg = w.g_a.rows();
    if (T == 0 || batch.n_runs == 0) return;
    if (K > 256) throw Error("vulkan kda: head_dim " + std::to_string(K) + " is larger than the supported 256");
    if (W < 1 || W > 16) throw Error("vulkan kda: conv width " + std::to_string(W) + " is outside the supported 1..16");
    const int32_t C = std::clamp(p.chunk_size, 1, kMaxChunk);

    // Which runs take which form.
    std::vector<int32_t> rec_runs, chunk_runs;
    std::vector<int32_t> chunks;  // (first row, rows) pairs
    for (int32_t i = 0; i < batch.n_runs; ++i) {
        const SeqRun& r = batch.runs[i];
        const bool chunked = kda_chunked(c.caps(), p.form, K, r.n_tokens);
        (chunked ? chunk_runs : rec_runs).push_back(i);
        if (chunked)
            for (int32_t t = 0; t < r.n_tokens; t += C) {
                chunks.push_back(r.first_row + t);
                chunks.push_back(std::min(C, r.n_tokens - t));
            }
    }
    const uint32_t ws_stride = uint32_t(2 * K + K + C);

    Workspace& ws = c.ws;
    const uint64_t f = 4;
    ws.begin(kda_workspace(c.caps(), T, H, K, Rf, Rg, C, !chunks.empty()), "kda");
    const View qkv = ws.take(uint64_t(T * 3 * D) * f), act = ws.take(uint64_t(T * 3 * D) * f);
    const View gate = ws.take(uint64_t(T * D) * f), ogate = ws.take(uint64_t(T * D) * f), o = ws.take(uint64_t(T * D) * f);
    const View beta = ws.take(uint64_t(T * H) * f), low_f = ws.take(uint64_t(T * Rf) * f), low_g = ws.take(uint64_t(T * Rg) * f);
    const View cws = chunks.empty() ? c.dummy() : ws.take(uint64_t(T * H) * ws_stride * f);

    // Projections (the first five read only x, so they need no barriers between them).
    const Operand x = activation(c, p.x, "kda x");
    linear(c, T, x, w.q_proj, {qkv, uint32_t(3 * D), 0}, "kda q_proj");
    linear(c, T, x, w.k_proj, shifted({qkv, uint32_t(3 * D), 0}, D), "kda k_proj");
    linear(c, T, x, w.v_proj, shifted({qkv, uint32_t(3 * D), 0}, 2 * D), "kda v_proj");
    linear(c, T, x, w.f_a, {low_f, uint32_t(Rf), 0}, "kda f_a");
    linear(c, T, x, w.g_a, {low_g, uint32_t(Rg), 0}, "kda g_a");
    linear(c, T, x, w.b_proj, {beta, uint32_t(H), 0}, "kda b_proj");
    linear(c, T, {low_f, uint32_t(Rf), 0}, w.f_b, {gate, uint32_t(D), 0}, "kda f_b");
    linear(c, T, {low_g, uint32_t(Rg), 0}, w.g_b, {ogate, uint32_t(D), 0}, "kda g_b");

    const View state = c.view(p.state, "kda state"), conv = c.view(p.conv_state, "kda conv_state");
    const View qc = c.view(w.q_conv, "kda q_conv"), kc = c.view(w.k_conv, "kda k_conv"), vc = c.view(w.v_conv, "kda v_conv");
    const View dtb = c.view(w.dt_bias, "kda dt_bias"), alog = c.view(w.a_log, "kda a_log"), onorm = c.view(w.o_norm, "kda o_norm");
    glsl::KdaPush pc{};
    pc.rows = uint32_t(T);
    pc.heads = uint32_t(H);
    pc.head_dim = uint32_t(K);
    pc.width = uint32_t(D);
    pc.conv_w = uint32_t(W);
    pc.chunk = uint32_t(C);
    pc.state_off = state.elem;
    pc.conv_off = conv.elem;
    pc.qc_off = qc.elem;
    pc.kc_off = kc.elem;
    pc.vc_off = vc.elem;
    pc.qc_dt = uint32_t(w.q_conv.dtype);
    pc.kc_dt = uint32_t(w.k_conv.dtype);
    pc.vc_dt = uint32_t(w.v_conv.dtype);
    pc.dt_off = dtb.elem;
    pc.dt_dt = uint32_t(w.dt_bias.dtype);
    pc.alog_off = alog.elem;
    pc.alog_dt = uint32_t(w.a_log.dtype);
    pc.onorm_off = onorm.elem;
    pc.onorm_dt = uint32_t(w.o_norm.dtype);
    pc.q_scale = float(1.0 / std::sqrt(double(K)));
    pc.l2_eps = p.l2_eps;
    pc.norm_eps = p.norm_eps;
    pc.ws_stride = ws_stride;
    const uint32_t push = sizeof(glsl::KdaPush);

    static const PipelineSpec gate_spec{"kda_gate", false, {1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(gate_spec), {out(gate), out(beta), in(dtb), in(alog)}, &pc, groups(std::max(D, H), 256), uint32_t(T));

    const BatchViews bv = c.upload_batch(batch);
    static const PipelineSpec conv_spec{"kda_conv", false, {1, 1, 1, 1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(conv_spec), {in(bv.runs), in(qkv), out(act), out(conv), in(qc), in(kc), in(vc)}, &pc,
                   groups(3 * D, 64), uint32_t(batch.n_runs));

    static const PipelineSpec l2_spec{"kda_l2norm", false, {1}, push, {}};
    c.rec.dispatch(c.pipeline(l2_spec), {out(act)}, &pc, groups(2 * H, 64), uint32_t(T));

    if (!rec_runs.empty()) {
        const View list = c.rec.upload(rec_runs.data(), rec_runs.size() * 4).view;
        pc.n_items = uint32_t(rec_runs.size());
        const PipelineSpec spec{"kda_recurrent", false, {1, 1, 1, 1, 1, 1, 1}, push, {uint32_t((K + 3) / 4)}};
        c.rec.dispatch(c.pipeline(spec), {in(bv.runs), in(list), in(act), in(gate), in(beta), out(state), out(o)}, &pc,
                       groups(K, 32), uint32_t(H), uint32_t(rec_runs.size()));
    }
    if (!chunk_runs.empty()) {
        const View chunk_list = c.rec.upload(chunks.data(), chunks.size() * 4).view;
        pc.n_items = uint32_t(chunks.size() / 2);
        static const PipelineSpec prep{"kda_chunk_prep", false, {1, 1, 1, 1, 1}, push, {}};
        c.rec.dispatch(c.pipeline(prep), {in(chunk_list), in(act), in(gate), in(beta), out(cws)}, &pc,
                       uint32_t(chunks.size() / 2), uint32_t(H));
        const View list = c.rec.upload(chunk_runs.data(), chunk_runs.size() * 4).view;
        pc.n_items = uint32_t(chunk_runs.size());
        static const PipelineSpec state_spec{"kda_chunk_state", false, {1, 1, 1, 1, 1, 1}, push, {}};
        c.rec.dispatch(c.pipeline(state_spec), {in(bv.runs), in(list), in(act), in(cws), out(state), out(o)}, &pc,
                       groups(K, 32), uint32_t(H), uint32_t(chunk_runs.size()));
    }

    static const PipelineSpec norm_spec{"kda_out_norm", false, {1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(norm_spec), {out(o), in(ogate), in(onorm)}, &pc, groups(H, 64), uint32_t(T));
    linear(c, T, {o, uint32_t(D), 0}, w.o_proj, activation(c, p.out, "kda out"), "kda o_proj");
}

}  // namespace halo::vk
