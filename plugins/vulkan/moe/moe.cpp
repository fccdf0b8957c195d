// Vulkan MoE: router logits as a matrix product, routing on the GPU (moe_route), then the experts. The chosen
// experts are known only on the device, so the shaders find each expert's weights through a table (ExpertRef per
// expert, plus the shared expert as expert E) pointing into an array of up to 16 weight bindings (experts spread
// over more buffers than that run in several passes). Few rows
// (decode) take matrix-vector shaders per (row, expert) pair; many rows (prefill) group the pairs by expert on the
// GPU (moe_sort) and run tiled products per expert. The weighted sum per row comes last (moe_combine).
#include <algorithm>
#include <map>

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

struct Located {
    const Tensor* t;
    VkBuffer buffer;
    uint64_t local;  // byte offset in the piece's VkBuffer
    uint64_t piece_size;
    uint32_t window = 0, elem = 0;
};

// Groups the expert tensors into as few bindings as possible (per VkBuffer, windows of at most the storage-buffer
// range starting at aligned offsets), then the experts into passes of at most HALO_MOE_BINDINGS windows. A layer
// loaded into one buffer (or imported from its shard files) takes one pass; experts scattered over many buffers
// take several, transparently.
std::vector<Pass> locate(Context& c, const MoeParams& p, bool x_wide) {
    const int E = p.n_experts;
    const bool shared = p.shared_gate.present();
    std::vector<Located> items;
    auto add = [&](const Tensor& t, const char* what) {
        const auto* b = static_cast<const VulkanBuffer*>(t.buffer);
        const Piece* piece = b ? b->piece_for(t.offset, std::max<uint64_t>(t.bytes(), 1)) : nullptr;
        if (!piece) {
            c.view(t, what);  // throws the sentence for a tensor that crosses pieces
            throw Error(std::string("vulkan moe: ") + what + " cannot be bound");
        }
        items.push_back({&t, piece->buffer, t.offset + b->lead - piece->begin, piece->size});
    };
    for (int e = 0; e < E; ++e) {
        add(p.w1[e], "moe expert w1");
        add(p.w3[e], "moe expert w3");
        add(p.w2[e], "moe expert w2");
    }
    if (shared) {
        add(p.shared_gate, "moe shared gate");
        add(p.shared_up, "moe shared up");
        add(p.shared_down, "moe shared down");
    }
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return items[a].buffer != items[b].buffer ? items[a].buffer < items[b].buffer : items[a].local < items[b].local;
    });
    std::vector<View> windows;
    const uint64_t align = c.caps().storage_align, range = c.caps().max_range;
    VkBuffer cur = VK_NULL_HANDLE;
    uint64_t base = 0, end = 0, piece_size = 0;
    auto close = [&] {
        if (cur) windows.push_back({cur, base, std::min<uint64_t>((end - base + 15) / 16 * 16, piece_size - base), 0});
    };
    for (size_t i : order) {
        Located& it = items[i];
        const uint64_t bytes = it.t->bytes();
        if (it.buffer != cur || it.local + bytes - base > range) {
            close();
            cur = it.buffer;
            base = it.local / align * align;
            end = base;
            piece_size = it.piece_size;
            if (it.local + bytes - base > range)
                throw Error("vulkan moe: one expert tensor (" + std::to_string(bytes) + " bytes) is larger than a shader "
                            "binding may address on this device");
        }
        end = std::max(end, it.local + bytes);
        it.window = uint32_t(windows.size());
        it.elem = uint32_t((it.local - base) / dtype_size(it.t->dtype));
    }
    close();

    const int64_t D = p.x.cols();
    auto wide = [&](const Located& l, int64_t k) {
        return k % 8 == 0 && l.elem % (l.t->dtype == DType::f32 ? 4 : 8) == 0;
    };
    std::vector<Pass> passes;
    std::vector<int32_t> slot_of(windows.size(), -1);  // window -> binding slot in the current pass
    for (int e = 0; e < E + (shared ? 1 : 0); ++e) {
        const Located* t3[3] = {&items[size_t(3 * e)], &items[size_t(3 * e + 1)], &items[size_t(3 * e + 2)]};
        std::vector<uint32_t> fresh;  // windows this expert adds to the current pass
        for (const Located* t : t3)
            if (slot_of[t->window] < 0 && std::find(fresh.begin(), fresh.end(), t->window) == fresh.end())
                fresh.push_back(t->window);
        if (passes.empty() || passes.back().windows.size() + fresh.size() > HALO_MOE_BINDINGS) {
            passes.emplace_back();
            passes.back().refs.assign(size_t(E + 1), glsl::ExpertRef{});
            std::fill(slot_of.begin(), slot_of.end(), -1);
        }
        Pass& pass = passes.back();
        uint32_t slot[3];
        for (int i = 0; i < 3; ++i) {
            int32_t& s = slot_of[t3[i]->window];
            if (s < 0) {
                s = int32_t(pass.windows.size());
                pass.windows.push_back(windows[t3[i]->window]);
            }
            slot[i] = uint32_t(s);
        }
        glsl::ExpertRef& r = pass.refs[size_t(e)];
        r = {slot[0], t3[0]->elem, slot[1], t3[1]->elem, slot[2], t3[2]->elem, uint32_t(t3[0]->t->rows()), 0};
        r.flags = uint32_t(t3[0]->t->dtype) | uint32_t(t3[1]->t->dtype) << 4 | uint32_t(t3[2]->t->dtype) << 8;
        if (x_wide && wide(*t3[0], D) && wide(*t3[1], D)) r.flags |= HALO_MOE_WIDE_UP;
        if (wide(*t3[2], r.inter)) r.flags |= HALO_MOE_WIDE_DOWN;
    }
    for (Pass& pass : passes)
        while (pass.windows.size() < HALO_MOE_BINDINGS) pass.windows.push_back(pass.windows[0]);
    return passes;
}

// The passes of recent layers, keyed by everything locate() reads (each tensor's VkBuffer, offset, dtype and
// shape), so a decode step does not sort 3 x 256 expert tensors per layer again.
struct PassCache {
    std::map<std::vector<uint64_t>, std::vector<Pass>> entries;
};

const std::vector<Pass>& cached_passes(Context& c, const MoeParams& p, bool x_wide) {
    auto& slot = c.op_state["moe.passes"];
    if (!slot) slot = std::make_shared<PassCache>();
    auto& cache = *static_cast<PassCache*>(slot.get());
    std::vector<uint64_t> key = {uint64_t(x_wide), uint64_t(p.n_experts), uint64_t(p.shared_gate.present())};
    auto add = [&](const Tensor& t) {
        const auto* b = static_cast<const VulkanBuffer*>(t.buffer);
        const Piece* piece = b ? b->piece_for(t.offset, std::max<uint64_t>(t.bytes(), 1)) : nullptr;
        key.insert(key.end(), {piece ? uint64_t(reinterpret_cast<uintptr_t>(piece->buffer)) : 0,
                               piece ? t.offset + b->lead - piece->begin : t.offset, uint64_t(t.dtype), uint64_t(t.rows()),
                               uint64_t(t.cols())});
    };
    for (int e = 0; e < p.n_experts; ++e) {
        add(p.w1[e]);
        add(p.w3[e]);
        add(p.w2[e]);
    }
    if (p.shared_gate.present()) {
        add(p.shared_gate);
        add(p.shared_up);
        add(p.shared_down);
    }
    if (auto it = cache.entries.find(key); it != cache.entries.end()) return it->second;
    if (cache.entries.size() >= 64) cache.entries.clear();
    return cache.entries.emplace(std::move(key), locate(c, p, x_wide)).first->second;
}

}  // namespace

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
    ws.begin(ws.cost(uint64_t(T * E) * f) + 2 * ws.cost(uint64_t(pairs) * f) + ws.cost(uint64_t(pairs * inter_max) * f) +
                 ws.cost(uint64_t(pairs * D) * f) + ws.cost(uint64_t(pairs) * f) + ws.cost(uint64_t(max_tiles + 1) * 16),
             "moe");
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
    for (const Pass& pass : cached_passes(c, p, x.view.elem % 4 == 0 && D % 8 == 0)) {
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
