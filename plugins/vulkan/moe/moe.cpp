// Vulkan MoE: router logits as a matrix product, routing on the GPU (moe_route), then the experts. The chosen
// experts are known only on the device, so the shaders find each expert's weights through a table (ExpertRef per
// expert, plus the shared expert as expert E) pointing into an array of up to 16 weight bindings (experts spread
// over more buffers than that run in several passes). Few rows
// (decode) take matrix-vector shaders per (row, expert) pair; many rows (prefill) group the pairs by expert on the
// GPU (moe_sort) and run tiled products per expert. The weighted sum per row comes last (moe_combine).
#include <algorithm>
#include <array>
#include <map>
#include <string>

#include "plugins/vulkan/moe/moe_shared.h"
#include "plugins/vulkan/ops.h"

namespace halo::vk {

using namespace halo::ops;

namespace {

constexpr int64_t kGemvRows = 8;  // rows up to which the per-pair matrix-vector path is used

// One dispatch's worth of experts: at most HALO_MOE_BINDINGS weight windows, and the expert table for them
// (experts of other passes have inter = 0, which the shaders skip).
struct Pass {
    std::vector<View> windows;          // HALO_MOE_BINDINGS entries (unused ones repeat the first)
    std::vector<glsl::ExpertRef> refs;  // E + 1 (the last is the shared expert, or unused)
};

// One byte range the shaders read: an expert tensor's data or its scales (Q4/Q8), located in its piece.
struct Region {
    VkBuffer buffer = VK_NULL_HANDLE;
    uint64_t local = 0;  // byte offset in the piece's VkBuffer
    uint64_t piece_size = 0;
    uint64_t bytes = 0;
    uint32_t unit = 4;   // storage unit (elements, words or scale elements)
    uint32_t window = 0, elem = 0;
};

// The tensors of expert e (the shared expert is e = E): w1, w3, w2.
std::array<const Tensor*, 3> expert_tensors(const MoeParams& p, int e) {
    if (e == p.n_experts) return {&p.shared_gate, &p.shared_up, &p.shared_down};
    return {&p.w1[e], &p.w3[e], &p.w2[e]};
}

const char* const kProjection[3] = {"w1", "w3", "w2"};

Region locate_region(Context& c, const Buffer* buffer, uint64_t offset, uint64_t bytes, uint32_t unit,
                     const std::string& what) {
    const auto* b = static_cast<const VulkanBuffer*>(buffer);
    const Piece* piece = b ? b->piece_for(offset, std::max<uint64_t>(bytes, 1)) : nullptr;
    if (!piece) {
        c.view(buffer, offset, bytes, unit, what.c_str());  // throws the sentence for a tensor that crosses pieces
        throw Error("vulkan moe: " + what + " cannot be bound");
    }
    Region r;
    r.buffer = piece->buffer;
    r.local = offset + b->lead - piece->begin;
    r.piece_size = piece->size;
    r.bytes = bytes;
    r.unit = unit;
    return r;
}

// Groups the expert tensors and their scales into as few bindings as possible (per VkBuffer, windows of at most
// the storage-buffer range starting at aligned offsets), then the experts into passes of at most
// HALO_MOE_BINDINGS windows. A layer loaded into one buffer (or imported from its shard files) takes one pass;
// experts scattered over many buffers take several, transparently.
std::vector<Pass> locate(Context& c, const MoeParams& p) {
    const int E = p.n_experts;
    const bool shared = p.shared_gate.present();
    const int experts = E + (shared ? 1 : 0);
    // regions[6 * e + i]: data of projection i; regions[6 * e + 3 + i]: its scales (unused for float tensors)
    std::vector<Region> regions(size_t(6 * experts));
    std::vector<size_t> used;
    for (int e = 0; e < experts; ++e) {
        const auto ts = expert_tensors(p, e);
        for (int i = 0; i < 3; ++i) {
            const Tensor& t = *ts[size_t(i)];
            const std::string what = e == E ? std::string("moe shared expert ") + kProjection[i]
                                            : "moe expert " + std::to_string(e) + " " + kProjection[i];
            check_weight(t, what.c_str());
            regions[size_t(6 * e + i)] = locate_region(c, t.buffer, t.offset, t.bytes(), storage_unit(t.dtype), what);
            used.push_back(size_t(6 * e + i));
            if (t.quantized()) {
                regions[size_t(6 * e + 3 + i)] = locate_region(c, t.scale.buffer, t.scale.offset, t.scale_bytes(),
                                                               uint32_t(dtype_size(t.scale.dtype)), what + " scales");
                used.push_back(size_t(6 * e + 3 + i));
            }
        }
    }
    std::vector<size_t> order = used;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return regions[a].buffer != regions[b].buffer ? regions[a].buffer < regions[b].buffer
                                                      : regions[a].local < regions[b].local;
    });
    std::vector<View> windows;
    const uint64_t align = c.caps().storage_align, range = c.caps().max_range;
    VkBuffer cur = VK_NULL_HANDLE;
    uint64_t base = 0, end = 0, piece_size = 0;
    auto close = [&] {
        if (cur) windows.push_back({cur, base, std::min<uint64_t>((end - base + 15) / 16 * 16, piece_size - base), 0});
    };
    for (size_t i : order) {
        Region& it = regions[i];
        if (it.buffer != cur || it.local + it.bytes - base > range) {
            close();
            cur = it.buffer;
            base = it.local / align * align;
            end = base;
            piece_size = it.piece_size;
            if (it.local + it.bytes - base > range)
                throw Error("vulkan moe: one expert tensor (" + std::to_string(it.bytes) + " bytes) is larger than a "
                            "shader binding may address on this device");
        }
        if ((it.local - base) % it.unit)
            throw Error("vulkan moe: an expert tensor starts at a byte offset that is not a multiple of its element "
                        "size " + std::to_string(it.unit) + "; align expert tensors in their buffer");
        end = std::max(end, it.local + it.bytes);
        it.window = uint32_t(windows.size());
        it.elem = uint32_t((it.local - base) / it.unit);
    }
    close();

    std::vector<Pass> passes;
    std::vector<int32_t> slot_of(windows.size(), -1);  // window -> binding slot in the current pass
    for (int e = 0; e < experts; ++e) {
        const auto ts = expert_tensors(p, e);
        std::vector<const Region*> mine;  // the regions this expert reads
        for (int i = 0; i < 3; ++i) {
            mine.push_back(&regions[size_t(6 * e + i)]);
            if (ts[size_t(i)]->quantized()) mine.push_back(&regions[size_t(6 * e + 3 + i)]);
        }
        std::vector<uint32_t> fresh;  // windows this expert adds to the current pass
        for (const Region* r : mine)
            if (slot_of[r->window] < 0 && std::find(fresh.begin(), fresh.end(), r->window) == fresh.end())
                fresh.push_back(r->window);
        if (passes.empty() || passes.back().windows.size() + fresh.size() > HALO_MOE_BINDINGS) {
            passes.emplace_back();
            passes.back().refs.assign(size_t(E + 1), glsl::ExpertRef{});
            std::fill(slot_of.begin(), slot_of.end(), -1);
        }
        Pass& pass = passes.back();
        auto slot = [&](const Region& r) {
            int32_t& s = slot_of[r.window];
            if (s < 0) {
                s = int32_t(pass.windows.size());
                pass.windows.push_back(windows[r.window]);
            }
            return uint32_t(s);
        };
        glsl::WeightRef w[3];
        for (int i = 0; i < 3; ++i) {
            const Region& d = regions[size_t(6 * e + i)];
            const Region& sc = regions[size_t(6 * e + 3 + i)];
            const bool q = ts[size_t(i)]->quantized();
            const uint32_t data_slot = slot(d);
            w[i] = weight_ref(*ts[size_t(i)], data_slot, d.elem, q ? slot(sc) : 0, q ? sc.elem : 0);
        }
        glsl::ExpertRef& r = pass.refs[size_t(e)];
        r.w1 = w[0];
        r.w3 = w[1];
        r.w2 = w[2];
        r.inter = uint32_t(ts[0]->rows());
        r.flags = 0;
        if (weight_chunks(r.w1, ts[0]->cols()) && weight_chunks(r.w3, ts[1]->cols())) r.flags |= HALO_MOE_WIDE_UP;
        if (weight_chunks(r.w2, ts[2]->cols())) r.flags |= HALO_MOE_WIDE_DOWN;
    }
    for (Pass& pass : passes)
        while (pass.windows.size() < HALO_MOE_BINDINGS) pass.windows.push_back(pass.windows[0]);
    return passes;
}

// The passes of recent layers, keyed by everything locate() reads (each tensor's VkBuffer, offset, dtype and
// shape, and its scales'), so a decode step does not sort 3 x 256 expert tensors per layer again.
struct PassCache {
    std::map<std::vector<uint64_t>, std::vector<Pass>> entries;
};

const std::vector<Pass>& cached_passes(Context& c, const MoeParams& p) {
    auto& slot = c.op_state["moe.passes"];
    if (!slot) slot = std::make_shared<PassCache>();
    auto& cache = *static_cast<PassCache*>(slot.get());
    std::vector<uint64_t> key = {uint64_t(p.n_experts), uint64_t(p.shared_gate.present())};
    auto where = [&](const Buffer* buffer, uint64_t offset, uint64_t bytes) {
        const auto* b = static_cast<const VulkanBuffer*>(buffer);
        const Piece* piece = b ? b->piece_for(offset, std::max<uint64_t>(bytes, 1)) : nullptr;
        key.insert(key.end(), {piece ? uint64_t(reinterpret_cast<uintptr_t>(piece->buffer)) : 0,
                               piece ? offset + b->lead - piece->begin : offset});
    };
    const int experts = p.n_experts + (p.shared_gate.present() ? 1 : 0);
    for (int e = 0; e < experts; ++e)
        for (const Tensor* t : expert_tensors(p, e)) {
            where(t->buffer, t->offset, t->bytes());
            key.insert(key.end(), {uint64_t(t->dtype), uint64_t(t->rows()), uint64_t(t->cols())});
            if (t->quantized()) {
                where(t->scale.buffer, t->scale.offset, t->scale_bytes());
                key.insert(key.end(), {uint64_t(t->scale.dtype), uint64_t(uint32_t(t->scale.group))});
            }
        }
    if (auto it = cache.entries.find(key); it != cache.entries.end()) return it->second;
    if (cache.entries.size() >= 64) cache.entries.clear();
    return cache.entries.emplace(std::move(key), locate(c, p)).first->second;
}

}  // namespace

uint64_t moe_workspace(const DeviceCaps& caps, int64_t T, int64_t E, int64_t D, int32_t top_k, bool shared,
                       int64_t inter) {
    const int64_t slots = top_k + (shared ? 1 : 0), pairs = T * slots;
    const int64_t inter_max = (inter + 7) / 8 * 8;
    const int64_t max_tiles = pairs / HALO_MOE_TILE + std::min<int64_t>(E + 1, pairs) + 1;
    const uint64_t f = 4, a = caps.storage_align;
    return workspace_cost(uint64_t(T * E) * f, a) + 2 * workspace_cost(uint64_t(pairs) * f, a) +
           workspace_cost(uint64_t(pairs * inter_max) * f, a) + workspace_cost(uint64_t(pairs * D) * f, a) +
           workspace_cost(uint64_t(pairs) * f, a) + workspace_cost(uint64_t(max_tiles + 1) * 16, a);
}

void moe(Context& c, const MoeParams& p) {
    const int64_t T = p.x.rows(), D = p.x.cols(), E = p.n_experts;
    if (T == 0) return;
    if (p.top_k < 1 || p.top_k > 16) throw Error("vulkan moe: top_k " + std::to_string(p.top_k) + " is outside the supported 1..16");
    if (E < 1 || E > 1024) throw Error("vulkan moe: " + std::to_string(E) + " experts is outside the supported 1..1024");
    if (p.n_groups > 64) throw Error("vulkan moe: more than 64 expert groups are not supported");
    const bool shared = p.shared_gate.present();
    const int64_t slots = p.top_k + (shared ? 1 : 0), pairs = T * slots;
    int64_t inter = 0;
    for (int64_t e = 0; e < E; ++e) inter = std::max(inter, p.w1[e].rows());
    if (shared) inter = std::max(inter, p.shared_gate.rows());
    const int64_t inter_max = (inter + 7) / 8 * 8;
    const bool gemv = T <= kGemvRows;
    const int64_t max_tiles = pairs / HALO_MOE_TILE + std::min<int64_t>(E + 1, pairs) + 1;

    Workspace& ws = c.ws;
    const uint64_t f = 4;
    ws.begin(moe_workspace(c.caps(), T, E, D, p.top_k, shared, inter), "moe");
    const View logits = ws.take(uint64_t(T * E) * f), ids = ws.take(uint64_t(pairs) * f), wts = ws.take(uint64_t(pairs) * f);
    const View h = ws.take(uint64_t(pairs * inter_max) * f), y = ws.take(uint64_t(pairs * D) * f);

    const Operand x = activation(c, p.x, "moe x");
    linear(c, T, x, p.router, {logits, uint32_t(E), 0}, "moe router");

    glsl::MoePush pc{};
    pc.rows = uint32_t(T);
    pc.dim = uint32_t(D);
    pc.n_experts = uint32_t(E);
    pc.top_k = uint32_t(p.top_k);
    pc.slots = uint32_t(slots);
    pc.n_groups = uint32_t(std::max(1, p.n_groups));
    pc.topk_groups = uint32_t(std::max(1, p.topk_groups));
    pc.renormalize = p.renormalize ? 1 : 0;
    pc.biased = p.weighting == MoeWeighting::biased ? 1 : 0;
    pc.routed_scale = p.routed_scale;
    pc.inter_max = uint32_t(inter_max);
    pc.x_off = x.view.elem;
    pc.max_tiles = uint32_t(max_tiles);
    View bias = c.dummy(), out_ids = c.dummy(), out_wts = c.dummy();
    if (p.router_bias.present()) {
        bias = c.view(p.router_bias, "moe router_bias");
        pc.has_bias = 1;
        pc.bias_off = bias.elem;
        pc.bias_dt = uint32_t(p.router_bias.dtype);
    }
    if (p.topk_ids.present()) {
        out_ids = c.view(p.topk_ids, "moe topk_ids");
        pc.write_ids = 1;
        pc.ids_off = out_ids.elem;
    }
    if (p.topk_weights.present()) {
        out_wts = c.view(p.topk_weights, "moe topk_weights");
        pc.write_wts = 1;
        pc.wts_off = out_wts.elem;
    }
    const uint32_t push = sizeof(glsl::MoePush);
    static const PipelineSpec route_spec{"moe_route", false, {1, 1, 1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(route_spec), {in(logits), in(bias), out(ids), out(wts), out(out_ids), out(out_wts)}, &pc,
                   groups(T, 64));

    const View order = gemv ? c.dummy() : ws.take(uint64_t(pairs) * f), tiles = gemv ? c.dummy() : ws.take(uint64_t(max_tiles + 1) * 16);
    if (!gemv) {
        static const PipelineSpec sort{"moe_sort", false, {1, 1, 1}, push, {}};
        c.rec.dispatch(c.pipeline(sort), {in(ids), out(order), out(tiles)}, &pc, 1);
    }
    pc.x_wide = x.view.elem % 4 == 0 && D % 8 == 0 ? 1 : 0;
    for (const Pass& pass : cached_passes(c, p)) {
        const View table = c.rec.upload(pass.refs.data(), pass.refs.size() * sizeof(glsl::ExpertRef)).view;
        auto with_weights = [&](std::vector<Binding> b) {
            for (const View& v : pass.windows) b.push_back(in(v));
            return b;
        };
        if (gemv) {
            static const PipelineSpec up{"moe_up_gemv", false, {1, 1, 1, 1, HALO_MOE_BINDINGS}, push, {}};
            c.rec.dispatch(c.pipeline(up), with_weights({in(x.view), in(ids), in(table), out(h)}), &pc, groups(inter_max, 4),
                           uint32_t(pairs));
            static const PipelineSpec down{"moe_down_gemv", false, {1, 1, 1, 1, HALO_MOE_BINDINGS}, push, {}};
            c.rec.dispatch(c.pipeline(down), with_weights({in(h), in(ids), in(table), out(y)}), &pc, groups(D, 4),
                           uint32_t(pairs));
        } else {
            static const PipelineSpec up{"moe_up_mm", false, {1, 1, 1, 1, 1, HALO_MOE_BINDINGS}, push, {}};
            c.rec.dispatch(c.pipeline(up), with_weights({in(x.view), in(order), in(tiles), in(table), out(h)}), &pc,
                           groups(inter_max, 64), uint32_t(max_tiles));
            static const PipelineSpec down{"moe_down_mm", false, {1, 1, 1, 1, 1, HALO_MOE_BINDINGS}, push, {}};
            c.rec.dispatch(c.pipeline(down), with_weights({in(h), in(order), in(tiles), in(table), out(y)}), &pc,
                           groups(D, 64), uint32_t(max_tiles));
        }
    }
    const View dst = c.view(p.out, "moe out");
    pc.out_off = dst.elem;
    static const PipelineSpec combine{"moe_combine", false, {1, 1, 1, 1}, push, {}};
    c.rec.dispatch(c.pipeline(combine), {in(y), in(ids), in(wts), out(dst)}, &pc, groups(D, 256), uint32_t(T));
}

}  // namespace halo::vk
