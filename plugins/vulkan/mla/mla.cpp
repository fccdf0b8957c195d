// Vulkan MLA (no rotary), always in the absorbed form like the CPU plugin (the expanded form is the same
// function): q and the latents as matrix products, the latents normalised and appended to the paged cache, q folded
// into the latent space, attention over the cache with an online softmax split over the context (all heads of a
// row share each cache read; mla_attention.comp, one head per workgroup, serves latents wider than 512), the
// splits merged, W_UV applied per head, the output projection.
#include <algorithm>

#include "plugins/vulkan/mla/mla_shared.h"
#include "plugins/vulkan/ops.h"

namespace halo::vk {

using namespace halo::ops;

namespace {

// The cache tensor as MLA_CACHE_SLOTS bindings (mla_cache.glsl): itself when one binding holds it, else the
// power-of-two pieces of its buffer that it spans (memory.cpp allocates large caches that way).
struct CacheSlots {
    std::vector<View> views;
    uint32_t off = 0, shift = 31;
};

CacheSlots cache_slots(Context& c, const Tensor& cache) {
    CacheSlots cs;
    const auto* b = static_cast<const VulkanBuffer*>(cache.buffer);
    const Piece* whole = b ? b->piece_for(cache.offset, cache.bytes()) : nullptr;
    if (!b || !b->pow2_shift || (whole && cache.bytes() + c.caps().storage_align <= c.caps().max_range)) {
        const View v = c.view(cache, "mla cache");  // throws the sentence when it cannot be bound
        cs.views.assign(MLA_CACHE_SLOTS, v);
        cs.off = v.elem;
        return cs;
    }
    const uint64_t es = dtype_size(cache.dtype), first = cache.offset + b->lead, last = first + cache.bytes() - 1;
    const uint64_t i0 = first >> b->pow2_shift, i1 = last >> b->pow2_shift;
    if (i1 - i0 + 1 > MLA_CACHE_SLOTS)
        throw Error("vulkan mla: the cache tensor (" + std::to_string(cache.bytes()) + " bytes) spans " +
                    std::to_string(i1 - i0 + 1) + " pieces of " + std::to_string(uint64_t(1) << b->pow2_shift) +
                    " bytes, more than the " + std::to_string(MLA_CACHE_SLOTS) +
                    " one dispatch binds; lower the context length or the number of sequences");
    for (uint64_t i = i0; i <= i1; ++i) cs.views.push_back({b->pieces[i].buffer, 0, b->pieces[i].size, 0});
    while (cs.views.size() < MLA_CACHE_SLOTS) cs.views.push_back(cs.views[0]);
    cs.off = uint32_t((first - (i0 << b->pow2_shift)) / es);
    cs.shift = b->pow2_shift - uint32_t(__builtin_ctzll(es));
    return cs;
}

// All heads of a row share each cache read (mla_attention_heads, 32 heads per workgroup) unless there are few heads
// to share it (under 16 would leave most of its lanes idle) or the latent is wider than its registers.
bool per_head_kernel(Context::MlaKernel kernel, int64_t H, int64_t r) {
    return kernel == Context::MlaKernel::per_head || (kernel == Context::MlaKernel::automatic && (H < 16 || r > 512));
}

}  // namespace

uint32_t mla_splits(Context::MlaKernel kernel, int64_t T, int64_t H, int64_t r, int64_t max_context) {
    // Context splits of at least 128 positions, enough of them to give the GPU ~256 workgroups.
    const int64_t head_groups = per_head_kernel(kernel, H, r) ? H : (H + 31) / 32;
    const int64_t want = std::max<int64_t>(1, 256 / std::max<int64_t>(1, T * head_groups));
    return uint32_t(std::clamp<int64_t>(std::min<int64_t>((max_context + 127) / 128, want), 1, 128));
}

uint64_t mla_workspace(const DeviceCaps& caps, int64_t T, int64_t H, int64_t dn, int64_t dr, int64_t dv, int64_t r,
                       uint32_t splits) {
    const int64_t dq = dn + dr, width = r + dr;
    const uint64_t f = 4, a = caps.storage_align;
    return workspace_cost(uint64_t(T * H * dq) * f, a) + workspace_cost(uint64_t(T * width) * f, a) +
           workspace_cost(uint64_t(T * H * width) * f, a) + workspace_cost(uint64_t(T * H * splits * (r + 2)) * f, a) +
           workspace_cost(uint64_t(T * H * r) * f, a) + workspace_cost(uint64_t(T * H * dv) * f, a);
}

void mla(Context& c, const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    const int64_t H = p.n_heads, dn = p.qk_nope_dim, dr = p.qk_rope_dim, dv = p.v_dim, r = p.kv_lora_rank;
    const int64_t dq = dn + dr, dkv = dn + dv, width = r + dr, T = batch.n_rows;
    if (T == 0 || batch.n_runs == 0) return;
    if (width > 1024) throw Error("vulkan mla: kv_lora_rank + qk_rope_dim = " + std::to_string(width) + " exceeds the supported 1024");
    for (int32_t i = 0; i < batch.n_runs; ++i) {
        const SeqRun& run = batch.runs[i];
        if (int64_t(run.n_pages) * p.page_size < run.pos + run.n_tokens)
            throw Error("mla: sequence page table too short for " + std::to_string(run.pos + run.n_tokens) + " tokens");
    }
    const BatchViews bv = c.upload_batch(batch);
    const bool per_head = per_head_kernel(c.mla_kernel, H, r);
    if (!per_head && r > 512)
        throw Error("vulkan mla: the all-heads attention kernel holds at most 512 latent values, not " + std::to_string(r));
    const int64_t head_groups = per_head ? H : (H + 31) / 32;
    const uint32_t splits = mla_splits(c.mla_kernel, T, H, r, bv.max_context);

    Workspace& ws = c.ws;
    const uint64_t f = 4;
    ws.begin(mla_workspace(c.caps(), T, H, dn, dr, dv, r, splits), "mla");
    const View q = ws.take(uint64_t(T * H * dq) * f), ckv = ws.take(uint64_t(T * width) * f);
    const View qc = ws.take(uint64_t(T * H * width) * f), part = ws.take(uint64_t(T * H * splits * (r + 2)) * f);
    const View ctx = ws.take(uint64_t(T * H * r) * f), o = ws.take(uint64_t(T * H * dv) * f);

    const Operand x = activation(c, p.x, "mla x");
    linear(c, T, x, w.q_proj, {q, uint32_t(H * dq), 0}, "mla q_proj");
    linear(c, T, x, w.kv_a, {ckv, uint32_t(width), 0}, "mla kv_a");

    const CacheSlots cache = cache_slots(c, p.cache);
    const View norm = c.view(w.kv_a_norm, "mla kv_a_norm");
    const WeightOperand kvb = weight_operand(c, w.kv_b, "mla kv_b");
    glsl::MlaPush pc{};
    pc.rows = uint32_t(T);
    pc.heads = uint32_t(H);
    pc.dn = uint32_t(dn);
    pc.dr = uint32_t(dr);
    pc.dv = uint32_t(dv);
    pc.rank = uint32_t(r);
    pc.width = uint32_t(width);
    pc.page_size = uint32_t(p.page_size);
    pc.splits = splits;
    pc.scale = p.softmax_scale;
    pc.eps = p.kv_norm_eps;
    pc.cache_off = cache.off;
    pc.cache_shift = cache.shift;
    pc.cache_dt = uint32_t(p.cache.dtype);
    pc.norm_off = norm.elem;
    pc.norm_dt = uint32_t(w.kv_a_norm.dtype);
    pc.kvb = kvb.ref;
    const uint32_t push = sizeof(glsl::MlaPush);

    auto with_cache = [&](std::vector<Binding> b, bool write) {
        for (const View& v : cache.views) b.push_back({v, write});
        return b;
    };
    static const PipelineSpec write_spec{"mla_cache_write", false, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(write_spec), with_cache({in(bv.runs), in(bv.pages), in(bv.row_run), in(ckv), in(norm)}, true),
                   &pc, uint32_t(T));
    static const PipelineSpec absorb_spec{"mla_absorb", false, {1, 2, 1}, push, {}};
    c.rec.dispatch(c.pipeline(absorb_spec), {in(q), in(kvb.data), in(kvb.scales), out(qc)}, &pc, groups(width, 64),
                   uint32_t(H), uint32_t(T));
    static const PipelineSpec attn_spec{"mla_attention", false, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, push, {}};
    static const PipelineSpec heads_spec{"mla_attention_heads", false, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(per_head ? attn_spec : heads_spec),
                   with_cache({in(bv.runs), in(bv.pages), in(bv.row_run), in(qc), out(part)}, false), &pc, splits,
                   uint32_t(head_groups), uint32_t(T));
    static const PipelineSpec combine_spec{"mla_combine", false, {1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(combine_spec), {in(part), out(ctx)}, &pc, uint32_t(H), uint32_t(T));

    // o[t, h, :] = W_UV[h] ctx[t, h, :], with W_UV[h] = kv_b rows h*dkv + dn .. + dv - 1: one batched product.
    const WeightOperand wuv = weight_rows(kvb, dn, dv, dkv);
    matmul(c, T, H, {ctx, uint32_t(H * r), uint32_t(r)}, wuv, {o, uint32_t(H * dv), uint32_t(dv)});
    linear(c, T, {o, uint32_t(H * dv), 0}, w.o_proj, activation(c, p.out, "mla out"), "mla o_proj");
}

}  // namespace halo::vk
