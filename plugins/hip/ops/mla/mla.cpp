// mla on HIP (no rotary): q and the latents as matrix products, the latents normalised and appended to the paged
// cache, then attention in the absorbed form for every MlaForm (the expanded form is the same function, and the
// absorbed one never expands the cache: each cached latent is read once for up to 8 heads): q folded into the latent
// space, attention over the cache split over the context, W_UV per head, the output projection. Kernels in mla.hip.
#include "plugins/hip/ops/mla/mla.h"

#include <algorithm>
#include <vector>

#include "plugins/hip/ops/linear/matmul.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

namespace {

uint32_t cache_kind(const Tensor& cache) {
    switch (cache.dtype) {
    case DType::f32: return kF32;
    case DType::f16: return kF16;
    case DType::bf16: return kBF16;
    default: unsupported("mla", std::string("a latent cache of dtype ") + dtype_name(cache.dtype));
    }
}

}  // namespace

void mla(Context& c, const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    const int64_t H = p.n_heads, dn = p.qk_nope_dim, dr = p.qk_rope_dim, dv = p.v_dim, r = p.kv_lora_rank;
    const int64_t dq = dn + dr, dkv = dn + dv, width = r + dr, T = batch.n_rows, hidden = p.x.cols();
    if (T == 0 || batch.n_runs == 0) return;
    if (p.x.dtype != DType::f32 || p.out.dtype != DType::f32) unsupported("mla", "activations other than F32");
    if (w.kv_a_norm.quantized()) unsupported("mla", "a quantized kv_a_norm " + shape_string(w.kv_a_norm));
    if (r > kMlaMaxRank)
        unsupported("mla", "a latent of " + std::to_string(r) + " values (the attention kernel holds at most " +
                               std::to_string(kMlaMaxRank) + ")");
    const WeightView q_proj = weight_view(w.q_proj, "mla"), kv_a = weight_view(w.kv_a, "mla");
    const WeightView kv_b = weight_view(w.kv_b, "mla"), o_proj = weight_view(w.o_proj, "mla");
    WeightView norm = weight_view(w.kv_a_norm, "mla");
    norm.rows = 1;
    norm.cols = r;
    const int64_t cache_tokens = p.page_size > 0 ? p.cache.numel() / width : 0;
    if (H <= 0 || dn < 0 || dr < 0 || dv <= 0 || r <= 0 || p.page_size <= 0 || p.x.rows() != T ||
        q_proj.rows != H * dq || q_proj.cols != hidden || kv_a.rows != width || kv_a.cols != hidden ||
        w.kv_a_norm.numel() != r || kv_b.rows != H * dkv || kv_b.cols != r || o_proj.rows != hidden ||
        o_proj.cols != H * dv || p.out.numel() != T * hidden || p.cache.numel() % (int64_t(p.page_size) * width) != 0)
        throw Error("mla: x " + shape_string(p.x) + ", q_proj " + shape_string(w.q_proj) + ", kv_a " +
                    shape_string(w.kv_a) + ", kv_a_norm " + shape_string(w.kv_a_norm) + ", kv_b " +
                    shape_string(w.kv_b) +
                    ", o_proj " + shape_string(w.o_proj) + ", out " + shape_string(p.out) + " and cache " +
                    shape_string(p.cache) + " (pages of " + std::to_string(p.page_size) + ") do not fit H=" +
                    std::to_string(H) + ", dn=" + std::to_string(dn) + ", dr=" + std::to_string(dr) +
                    ", dv=" + std::to_string(dv) + ", r=" + std::to_string(r));
    const int64_t cache_pages = cache_tokens / p.page_size;

    // Per row: its position and its sequence's page table (flattened); the longest context sizes the splits.
    std::vector<MlaRow> rows(static_cast<size_t>(T));
    std::vector<int32_t> pages;
    int64_t max_ctx = 0;
    for (int32_t s = 0; s < batch.n_runs; ++s) {
        const SeqRun& run = batch.runs[s];
        if (int64_t(run.n_pages) * p.page_size < run.pos + run.n_tokens)
            throw Error("mla: sequence page table too short for " + std::to_string(run.pos + run.n_tokens) + " tokens");
        if (run.first_row < 0 || int64_t(run.first_row) + run.n_tokens > T)
            throw Error("mla: a run of rows " + std::to_string(run.first_row) + ".." +
                        std::to_string(run.first_row + run.n_tokens) + " is outside the step's " + std::to_string(T) +
                        " rows");
        const int64_t used = (run.pos + run.n_tokens + p.page_size - 1) / p.page_size;
        for (int64_t i = 0; i < used; ++i)
            if (run.pages[i] < 0 || run.pages[i] >= cache_pages)
                throw Error("mla: page " + std::to_string(run.pages[i]) + " of a sequence is outside the cache's " +
                            std::to_string(cache_pages) + " pages");
        const int32_t base = int32_t(pages.size());
        pages.insert(pages.end(), run.pages, run.pages + used);
        for (int32_t i = 0; i < run.n_tokens; ++i) rows[size_t(run.first_row + i)] = {run.pos + i, base, 0};
        max_ctx = std::max(max_ctx, run.pos + run.n_tokens);
    }

    MlaDims d;
    d.rows = int32_t(T);
    d.heads = int32_t(H);
    d.dn = int32_t(dn);
    d.dr = int32_t(dr);
    d.dv = int32_t(dv);
    d.rank = int32_t(r);
    d.width = int32_t(width);
    d.page_size = p.page_size;
    d.cache_kind = cache_kind(p.cache);

    // Context splits of at least 256 positions, enough of them for ~256 blocks; each a whole number of 64-tiles.
    const int64_t want = std::max<int64_t>(1, 256 / (T * mla_head_groups(H)));
    int64_t splits = std::clamp<int64_t>(std::min<int64_t>((max_ctx + 255) / 256, want), 1, 64);
    const int64_t chunk = ((max_ctx + splits - 1) / splits + 63) / 64 * 64;
    splits = (max_ctx + chunk - 1) / chunk;

    c.ws.begin_op();
    const MlaRow* d_rows = c.ws.upload(rows.data(), T);
    const int32_t* d_pages = c.ws.upload(pages.data(), int64_t(pages.size()));
    float* q = c.ws.take<float>(T * H * dq);
    float* ckv = c.ws.take<float>(T * width);
    float* qc = c.ws.take<float>(T * H * width);
    float* part = c.ws.take<float>(T * H * splits * (r + 2));
    float* ctx = c.ws.take<float>(T * H * r);
    float* o = c.ws.take<float>(T * H * dv);

    const float* x = ptr<const float>(p.x);
    unsigned char* cache = ptr<unsigned char>(p.cache);
    matmul(c, x, hidden, T, q_proj, q, H * dq);
    matmul(c, x, hidden, T, kv_a, ckv, width);
    launch_mla_cache_write(c.launch(), d, ckv, norm, p.kv_norm_eps, d_rows, d_pages, cache);
    launch_mla_absorb(c.launch(), d, q, kv_b, qc);
    launch_mla_attention(c.launch(), d, qc, cache, d_rows, d_pages, p.softmax_scale, int32_t(splits), chunk, part, ctx);
    // o[t, h, :] = W_UV[h] ctx[t, h, :], W_UV[h] = kv_b rows h*dkv + dn .. + dv - 1.
    for (int64_t h = 0; h < H; ++h)
        matmul(c, ctx + h * r, H * r, T, weight_rows(kv_b, h * dkv + dn, dv), o + h * dv, H * dv);
    matmul(c, o, H * dv, T, o_proj, ptr<float>(p.out), hidden);
}

}  // namespace halo::hip
