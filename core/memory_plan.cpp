#include "core/memory_plan.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>

#include "core/model.h"
#include "core/weights.h"

namespace halo {

using namespace halo::ops;

namespace {

constexpr uint64_t kAlign = 256;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// The float dtype config.json's "dtype" names (bfloat16 when absent or unknown, as the release).
DType config_float_dtype(const ModelConfig& c) {
    if (c.dtype == "float16") return DType::f16;
    if (c.dtype == "float32") return DType::f32;
    return DType::bf16;
}

// The tensor as a matrix of packed words and scales of `format` (group elements per scale).
void set_quantized(Tensor& t, DType format, DType scale_dtype, int32_t group) {
    t.dtype = format;
    t.scale.dtype = scale_dtype;
    t.scale.group = group;
}

}  // namespace

std::vector<WeightTensor> weights_from_config(const ModelConfig& config, const QuantChoice& quantize) {
    std::vector<WeightTensor> out;
    ModelWeights slots;
    const DType floats = config_float_dtype(config);
    for_each_tensor(config, slots, [&](const TensorSpec& spec, Tensor&) {
        WeightTensor w;
        w.name = spec.name;
        w.layer = spec.layer;
        w.meta.ndim = int32_t(spec.shape.size());
        for (size_t i = 0; i < spec.shape.size(); ++i) w.meta.shape[i] = spec.shape[i];
        w.meta.dtype = spec.f32_in_release ? DType::f32 : floats;
        const std::string kWeight = ".weight";
        const bool linear_name = spec.shape.size() == 2 && spec.name.size() > kWeight.size() &&
                                 spec.name.compare(spec.name.size() - kWeight.size(), kWeight.size(), kWeight) == 0;
        if (config.quant.present && linear_name && weight_class(spec.name) != WeightClass::other) {
            // A compressed-tensors checkpoint: the modules its config groups target are stored packed, BF16 scales.
            if (const QuantScheme* scheme = config.quant.scheme_for(spec.name.substr(0, spec.name.size() - kWeight.size())))
                set_quantized(w.meta, scheme->format(), DType::bf16, scheme->group_size);
        }
        w.stored_bytes = w.meta.bytes() + w.meta.scale_bytes();
        const DType target = quantize.format_for(spec.name);
        if (!w.meta.quantized() && is_quantized(target) && spec.shape.size() == 2) {
            set_quantized(w.meta, target, DType::bf16, quantize.group);
            w.quantized_at_load = true;
        }
        out.push_back(std::move(w));
    });
    return out;
}

MemoryLayout layout_memory(const ModelConfig& c, const std::vector<WeightTensor>& weights, const ModelOptions& o,
                           bool in_place, const std::vector<uint64_t>& file_bytes) {
    MemoryLayout L;
    // Used in place, every tensor must start at a multiple of its element size (GPU plugins address elements, not
    // bytes; packed words and scales alike). A valid file whose header is not padded can break that; its weights
    // are then copied, aligned.
    L.weights_in_place = in_place;
    for (const WeightTensor& w : weights) {
        if (!in_place || w.quantized_at_load) continue;
        const uint64_t unit = w.meta.quantized() ? 4 : dtype_size(w.meta.dtype);
        if (reinterpret_cast<uintptr_t>(w.data) % unit != 0) L.weights_in_place = false;
        if (w.meta.quantized() && reinterpret_cast<uintptr_t>(w.scale) % dtype_size(w.meta.scale.dtype) != 0)
            L.weights_in_place = false;
    }
    if (L.weights_in_place) {
        for (uint64_t b : file_bytes) L.in_place_bytes += b;
        for (const WeightTensor& w : weights) {
            if (file_bytes.empty()) L.in_place_bytes += w.stored_bytes;  // from config.json: the tensors as stored
            if (w.quantized_at_load) L.in_place_read_once += w.stored_bytes;
        }
    }

    std::map<std::string, int32_t> group_index;
    L.weights.resize(weights.size());
    for (size_t i = 0; i < weights.size(); ++i) {
        const WeightTensor& w = weights[i];
        const uint64_t bytes = align_up(w.meta.bytes()), scales = align_up(w.meta.scale_bytes());
        L.weight_bytes += bytes + scales;
        if (L.weights_in_place && !w.quantized_at_load) continue;
        const std::string group = w.layer >= 0 ? "layer" + std::to_string(w.layer) : w.name;
        auto [it, fresh] = group_index.try_emplace(group, int32_t(L.groups.size()));
        if (fresh) L.groups.push_back({group, 0});
        MemoryLayout::Group& g = L.groups[size_t(it->second)];
        MemoryLayout::Place& p = L.weights[i];
        p.group = it->second;
        p.offset = g.bytes;
        g.bytes += bytes;
        p.scale_offset = g.bytes;
        g.bytes += scales;
        L.copied_bytes += bytes + scales;
    }

    const int64_t S = o.max_sequences;
    const int64_t H = c.kda_num_heads, K = c.kda_head_dim, W = c.short_conv_kernel_size;
    L.sequences = int32_t(S);
    L.kda_layers = c.count(MixerKind::kda);
    L.kda_state_slot_bytes = uint64_t(H * K * K) * 4;
    L.kda_conv_slot_bytes = uint64_t(3 * std::max<int64_t>(W - 1, 0) * H * K) * 4;

    if (o.prefix_cache_bytes && L.prefix_snapshot_bytes())
        L.prefix_snapshots = int32_t(std::min<uint64_t>(o.prefix_cache_bytes / L.prefix_snapshot_bytes(), INT32_MAX));

    L.mla_layers = c.count(MixerKind::mla);
    L.page_size = o.page_size;
    L.cache_width = c.kv_lora_rank + c.qk_rope_head_dim;
    L.cache_pages = S * ((o.max_context + o.page_size - 1) / o.page_size);
    L.cache_dtype = o.cache_dtype;
    L.cache_layer_bytes = uint64_t(L.cache_pages * L.page_size * L.cache_width) * dtype_size(o.cache_dtype);

    const int64_t R = o.max_step_rows, N = o.max_logit_rows, D = c.hidden_size;
    L.off_ids = 0;
    L.off_rows = align_up(uint64_t(R) * 4);
    L.off_x = L.off_rows + align_up(uint64_t(N) * 4);
    L.off_a = L.off_x + align_up(uint64_t(R * D) * 4);
    L.off_t = L.off_a + align_up(uint64_t(R * D) * 4);
    L.off_g = L.off_t + align_up(uint64_t(R * D) * 4);
    L.off_logits = L.off_g + align_up(uint64_t(N * D) * 4);
    L.scratch_bytes = L.off_logits + align_up(uint64_t(N * c.vocab_size) * 4);
    return L;
}

StepShape step_shape(const ModelConfig& c, const ModelOptions& o, const int32_t placement[]) {
    StepShape s;
    s.max_rows = o.max_step_rows;
    s.max_logit_rows = o.max_logit_rows;
    s.max_sequences = o.max_sequences;
    s.max_context = o.max_context;
    s.page_size = o.page_size;
    s.cache_dtype = o.cache_dtype;
    for (int u = 0; u < kMemoryUseCount; ++u) s.placement[u] = placement[u];
    s.hidden = c.hidden_size;
    s.vocab = c.vocab_size;
    s.kda_layers = c.count(MixerKind::kda);
    s.mla_layers = c.count(MixerKind::mla);
    s.dense_layers = c.count(FfnKind::dense);
    s.moe_layers = c.count(FfnKind::moe);
    s.dense_inter = c.intermediate_size;
    s.kda_heads = c.kda_num_heads;
    s.kda_head_dim = c.kda_head_dim;
    s.kda_conv_width = c.short_conv_kernel_size;
    s.kda_chunk = o.kda_chunk;
    s.kda_form = o.kda_form;
    s.mla_heads = c.num_attention_heads;
    s.mla_nope_dim = c.qk_nope_head_dim;
    s.mla_rope_dim = c.qk_rope_head_dim;
    s.mla_v_dim = c.v_head_dim;
    s.mla_rank = c.kv_lora_rank;
    s.mla_form = o.mla_form;
    s.experts = c.num_experts;
    s.top_k = c.num_experts_per_token;
    s.expert_inter = c.moe_intermediate_size;
    s.shared_inter = c.moe_intermediate_size * c.num_shared_experts;
    return s;
}

uint64_t PlacementPlan::limit() const {
    if (budget && device_bytes) return std::min(budget, device_bytes);
    return budget ? budget : device_bytes;
}

std::vector<MemoryPlan::Pool> MemoryPlan::pools() const {
    std::vector<Pool> out;
    for (const PlacementPlan& pp : placements) {
        if (pp.pool.empty() || !pp.needed()) continue;
        auto it = std::find_if(out.begin(), out.end(), [&](const Pool& q) { return q.name == pp.pool; });
        if (it == out.end()) {
            out.push_back({pp.pool, {}, 0, 0});
            it = out.end() - 1;
        }
        it->placements.push_back(pp.name);
        it->needed += pp.needed();
        if (pp.device_bytes) it->limit = it->limit ? std::min(it->limit, pp.device_bytes) : pp.device_bytes;
    }
    std::erase_if(out, [](const Pool& q) { return q.placements.size() < 2; });  // one placement: checked alone
    return out;
}

bool MemoryPlan::fits() const {
    for (const PlacementPlan& p : placements)
        if (!p.fits()) return false;
    for (const Pool& q : pools())
        if (!q.fits()) return false;
    return true;
}

MemoryPlan plan_memory(const PlanInputs& in, const ModelOptions& o) {
    const ModelConfig& c = *in.config;
    MemoryPlan p;
    p.context = o.max_context;
    p.sequences = o.max_sequences;
    p.step_rows = o.max_step_rows;
    p.logit_rows = o.max_logit_rows;
    p.device_unavailable = in.device_unavailable;

    // Placements: the options' names, else the device's defaults.
    const DeviceInfo* dev = in.backend ? &in.backend->device() : nullptr;
    if (dev) {
        p.device_name = dev->name;
        for (const PlacementInfo& pi : dev->placements) {
            PlacementPlan pp;
            pp.name = pi.name;
            pp.pool = pi.pool;
            pp.device_bytes = pi.budget_bytes ? pi.budget_bytes : pi.capacity_bytes;
            p.placements.push_back(pp);
        }
    }
    for (int u = 0; u < kMemoryUseCount; ++u) {
        std::string name = o.placement[u];
        if (name.empty()) name = dev ? dev->default_placement[u] : "(the plugin's default)";
        p.placement_name[u] = name;
        auto found = std::find_if(p.placements.begin(), p.placements.end(),
                                  [&](const PlacementPlan& pp) { return pp.name == name; });
        if (found == p.placements.end()) {
            if (dev) {
                std::string names;
                for (const auto& pi : dev->placements) names += (names.empty() ? "" : ", ") + pi.name;
                throw std::runtime_error("placement '" + name + "' for " + memory_use_name(MemoryUse(u)) +
                                         " does not exist on " + dev->name + " (it has: " + names + ")");
            }
            p.placements.push_back({name, ""});
            found = p.placements.end() - 1;
        }
        p.placement[u] = dev ? int32_t(found - p.placements.begin()) : -1;
    }
    for (PlacementPlan& pp : p.placements)
        if (auto it = in.budget.find(pp.name); it != in.budget.end()) pp.budget = it->second;

    const bool imports = in.allow_in_place && dev && dev->placements[size_t(p.placement[0])].imports_host;
    p.layout = layout_memory(c, *in.weights, o, imports, in.file_bytes);
    const MemoryLayout& L = p.layout;
    p.bytes[int(MemoryUse::weights)] = L.weight_bytes;
    p.bytes[int(MemoryUse::state)] = L.state_bytes() + L.prefix_bytes();
    p.bytes[int(MemoryUse::cache)] = L.cache_bytes();
    p.bytes[int(MemoryUse::scratch)] = L.scratch_bytes;
    p.weights_zero_copy = L.weights_in_place;
    p.weights_copied_bytes = L.copied_bytes;
    for (const WeightTensor& w : *in.weights) {
        p.quantized_at_load += w.quantized_at_load ? 1 : 0;
        p.weights_by_dtype[dtype_name(w.meta.dtype)] += w.meta.bytes();
        if (w.meta.quantized()) p.weights_by_dtype[std::string(dtype_name(w.meta.scale.dtype)) + " scales"] += w.meta.scale_bytes();
    }
    p.kda_state_per_sequence = uint64_t(L.kda_layers) * L.kda_state_slot_bytes;
    p.kda_conv_per_sequence = uint64_t(L.kda_layers) * L.kda_conv_slot_bytes;
    p.cache_per_token = uint64_t(L.mla_layers) * uint64_t(L.cache_width) * dtype_size(L.cache_dtype);

    p.shape = step_shape(c, o, p.placement);
    if (in.backend) p.plugin = in.backend->plan_internal(p.shape);
    for (const InternalUse& u : p.plugin) p.plugin_bytes += u.bytes;

    // Per placement. Without a device each use's placement is found by name.
    auto at = [&](int u) -> PlacementPlan& {
        if (p.placement[u] >= 0) return p.placements[size_t(p.placement[u])];
        for (PlacementPlan& pp : p.placements)
            if (pp.name == p.placement_name[u]) return pp;
        return p.placements.front();
    };
    at(int(MemoryUse::weights)).weights += (L.weights_in_place ? L.in_place_bytes : 0) + L.copied_bytes;
    at(int(MemoryUse::weights)).read_once += L.in_place_read_once;
    at(int(MemoryUse::state)).state += L.state_bytes() + L.prefix_bytes();
    at(int(MemoryUse::cache)).cache += L.cache_bytes();
    at(int(MemoryUse::scratch)).scratch += L.scratch_bytes;
    for (const InternalUse& u : p.plugin)
        if (u.placement >= 0 && size_t(u.placement) < p.placements.size()) p.placements[size_t(u.placement)].plugin += u.bytes;
    return p;
}

ContextChoice choose_context(const std::function<MemoryPlan(int64_t)>& plan_for, int64_t step, int64_t max_context,
                             const OptionOrigins& origin) {
    ContextChoice choice;
    const std::string max_text = std::to_string(max_context) + " tokens";
    if (max_context <= step) {  // a model shorter than one page: its length, if that fits
        const MemoryPlan p = plan_for(max_context);
        if (!p.fits()) throw std::runtime_error("context = auto: " + refusal(p, origin));
        return {max_context, "context auto: " + max_text + ", the model's maximum length"};
    }
    const int64_t top = max_context / step;
    if (plan_for(top * step).fits())
        return {top * step, "context auto: " + std::to_string(top * step) + " tokens, " +
                                (top * step == max_context ? "the model's maximum length"
                                                           : "the largest multiple of " + std::to_string(step) +
                                                                 " tokens within the model's maximum length of " + max_text)};
    const MemoryPlan smallest = plan_for(step);
    if (!smallest.fits())
        throw std::runtime_error("context = auto: not even " + std::to_string(step) + " tokens fit; " +
                                 refusal(smallest, origin));
    int64_t lo = 1, hi = top;  // lo fits, hi does not
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (plan_for(mid * step).fits() ? lo : hi) = mid;
    }
    choice.context = lo * step;
    // Why not one page more: the first placement over its limit there.
    const MemoryPlan over = plan_for(hi * step);
    std::string why;
    for (const PlacementPlan& pp : over.placements)
        if (!pp.fits()) {
            why = std::to_string(hi * step) + " tokens would need " + size_text(pp.needed()) + " in placement '" +
                  pp.name + "', over the " + size_text(pp.limit()) + " available";
            break;
        }
    choice.reason = "context auto: " + std::to_string(choice.context) + " tokens, the largest multiple of " +
                    std::to_string(step) + " that fits (" + why + ")";
    return choice;
}

}  // namespace halo
