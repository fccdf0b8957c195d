// The memory plan: every byte a model will hold, per placement, computed before anything is allocated from the
// config, each tensor's dtype and shape (checkpoint headers, or config.json alone) and the run options, and set
// against what the device reports. It is one layout computation: Model allocates exactly the buffers the layout
// describes (weight groups and offsets, state, cache, scratch regions), and a plugin's own allocations come from the
// plugin's sizing code (Backend::plan_internal).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/config.h"
#include "core/quantization.h"
#include "core/safetensors.h"
#include "ops/backend.h"

namespace halo {

struct ModelOptions;  // core/model.h

// One weight tensor as the model will hold it, in for_each_tensor order.
struct WeightTensor {
    std::string name;
    int32_t layer = -1;      // checkpoint layer, -1 for global tensors
    ops::Tensor meta;        // dtype, shape and (quantized) scale dtype and group; no buffer
    // Where its bytes come from (null when planned from config.json alone): the mapped elements or packed words,
    // the scales of a stored quantized tensor, or the float tensor quantized at load.
    const uint8_t* data = nullptr;
    const uint8_t* scale = nullptr;
    const TensorRecord* quantize_from = nullptr;
    bool quantized_at_load = false;
    uint64_t stored_bytes = 0;  // its bytes in the checkpoint's files (before any quantizing at load)
};

// The tensors of a model described by config.json alone: float tensors in the config's dtype (A_log and dt_bias in
// F32, as released), or the quantization_config's packed format for the modules it targets; then the load-time
// choice applied to float matrices.
std::vector<WeightTensor> weights_from_config(const ModelConfig& config, const QuantChoice& quantize);

// Where every buffer of the model goes and how large it is.
struct MemoryLayout {
    // Weights used in place: the checkpoint's files are imported whole (their bytes, headers and unused tensors
    // included). Tensors quantized at load are copied even then.
    bool weights_in_place = false;
    uint64_t in_place_bytes = 0;
    // Of those, the float originals of tensors quantized at load: read once while loading, then never again (the
    // kernel may drop their pages), so not counted against the placement's limit.
    uint64_t in_place_read_once = 0;
    // Copied weights: one buffer per group (a layer, or a global tensor), each tensor and then its scales at
    // 256-byte aligned offsets.
    struct Group {
        std::string name;  // "layer3", "model.embed_tokens.weight"
        uint64_t bytes = 0;
    };
    std::vector<Group> groups;
    struct Place {
        int32_t group = -1;  // -1: used in place
        uint64_t offset = 0, scale_offset = 0;
    };
    std::vector<Place> weights;  // per WeightTensor
    uint64_t weight_bytes = 0;   // every tensor and its scales, 256-byte aligned (in place or copied)
    uint64_t copied_bytes = 0;   // of the groups

    // KDA: per KDA layer one state buffer [sequences, H, K, K] F32 and one conv history buffer
    // [sequences, 3, W - 1, H * K] F32; a sequence's slot in each.
    int32_t kda_layers = 0;
    int32_t sequences = 0;
    uint64_t kda_state_slot_bytes = 0, kda_conv_slot_bytes = 0;
    // MLA: per MLA layer one cache buffer [pages, page_size, kv_lora_rank + qk_rope_head_dim] of cache_dtype, pages
    // enough for every sequence at the full context.
    int32_t mla_layers = 0;
    int64_t cache_pages = 0, page_size = 0, cache_width = 0;
    ops::DType cache_dtype = ops::DType::f32;
    uint64_t cache_layer_bytes = 0;
    // Scratch: one buffer of one step's activations, regions at 256-byte aligned offsets: token ids [R] i32, logit
    // rows [L] i32, x / a / t [R, hidden] f32, gathered rows [L, hidden] f32, logits [L, vocab] f32.
    uint64_t off_ids = 0, off_rows = 0, off_x = 0, off_a = 0, off_t = 0, off_g = 0, off_logits = 0;
    uint64_t scratch_bytes = 0;

    // The prefix cache: at most prefix_snapshots copies of one sequence's KDA state and conv history (every KDA
    // layer), allocated as prompts are read; the MLA pages of cached prefixes are cache pages nobody else uses.
    int32_t prefix_snapshots = 0;
    uint64_t prefix_snapshot_bytes() const { return uint64_t(kda_layers) * (kda_state_slot_bytes + kda_conv_slot_bytes); }
    uint64_t prefix_bytes() const { return uint64_t(prefix_snapshots) * prefix_snapshot_bytes(); }

    uint64_t state_bytes() const { return uint64_t(kda_layers) * sequences * (kda_state_slot_bytes + kda_conv_slot_bytes); }
    uint64_t cache_bytes() const { return uint64_t(mla_layers) * cache_layer_bytes; }
};

// The layout for these tensors and options. in_place: the weights placement imports host memory (the plan then
// checks that every tensor is aligned for it); file_bytes: the sizes of the checkpoint's files (none from a config).
MemoryLayout layout_memory(const ModelConfig& config, const std::vector<WeightTensor>& weights,
                           const ModelOptions& options, bool in_place, const std::vector<uint64_t>& file_bytes);

// The step shape the layout implies, for the plugin's own plan.
ops::StepShape step_shape(const ModelConfig& config, const ModelOptions& options, const int32_t placement[]);

// Bytes per placement of the device.
struct PlacementPlan {
    std::string name;          // the device's name for it ("heap"), or the name asked for when there is no device
    std::string pool;          // the physical memory behind it (PlacementInfo::pool); empty: its own
    uint64_t weights = 0, state = 0, cache = 0, scratch = 0;
    uint64_t plugin = 0;       // the plugin's own allocations in it
    uint64_t read_once = 0;    // of weights, mapped bytes read only while loading (MemoryLayout::in_place_read_once)
    uint64_t device_bytes = 0; // what the device reports as available (budget, else capacity); 0 = unknown
    uint64_t budget = 0;       // the profile's budget for it; 0 = none
    uint64_t total() const { return weights + state + cache + scratch + plugin; }
    uint64_t needed() const { return total() - read_once; }  // what must fit the limit
    uint64_t limit() const;    // the smaller of the known limits; 0 = unknown
    bool limited_by_budget() const { return budget && (!device_bytes || budget <= device_bytes); }
    bool fits() const { return !limit() || needed() <= limit(); }
};

struct MemoryPlan {
    MemoryLayout layout;
    ops::StepShape shape;  // what the plugin planned for

    // The options as resolved.
    int64_t context = 0;
    int32_t sequences = 0, step_rows = 0, logit_rows = 0;

    // Per memory use: bytes (weights as held: tensors and scales, 256-byte aligned), and the placement index
    // (-1 without a device).
    uint64_t bytes[ops::kMemoryUseCount] = {};
    int32_t placement[ops::kMemoryUseCount] = {-1, -1, -1, -1};
    std::string placement_name[ops::kMemoryUseCount];
    bool weights_zero_copy = false;     // weights used in place from the mapped files
    uint64_t weights_copied_bytes = 0;  // of bytes[weights], what is copied into plugin memory
    uint64_t quantized_at_load = 0;     // tensors quantized at load (ModelOptions::quantize)
    std::map<std::string, uint64_t> weights_by_dtype;  // tensor bytes (unaligned) by dtype: "BF16", "Q4", "BF16 scales"

    // Per sequence and per token.
    uint64_t kda_state_per_sequence = 0;  // F32 recurrent state of every KDA layer
    uint64_t kda_conv_per_sequence = 0;   // F32 conv history of every KDA layer
    uint64_t cache_per_token = 0;         // MLA latent of every MLA layer, in the cache dtype

    std::vector<ops::InternalUse> plugin;  // the plugin's own allocations, planned
    uint64_t plugin_bytes = 0;             // their total

    std::string device_name;         // empty without a device
    std::string device_unavailable;  // why there is no device (the plan still holds)
    std::vector<PlacementPlan> placements;  // the device's placements in its order (those named, without one)

    // Placements that draw on the same physical memory (PlacementInfo::pool), when more than one of them holds
    // something: together they must fit the pool (the smallest limit the device reports for one of them).
    struct Pool {
        std::string name;
        std::vector<std::string> placements;
        uint64_t needed = 0, limit = 0;  // limit 0 = unknown
        bool fits() const { return !limit || needed <= limit; }
    };
    std::vector<Pool> pools() const;

    bool fits() const;
    // "weights 98.245 GB (mmap, in place), state ..., plugin temporaries ..." in one line.
    std::string describe(const ops::DeviceInfo& device) const;
    std::string describe() const;
};

// Where the plan's tensors come from, and what it is set against.
struct PlanInputs {
    const ModelConfig* config = nullptr;
    const std::vector<WeightTensor>* weights = nullptr;
    std::vector<uint64_t> file_bytes;           // the checkpoint's files (empty: planned from a config)
    const ops::Backend* backend = nullptr;      // null: no device (placements by name, no limits, no plugin part)
    std::string device_unavailable;             // why backend is null
    std::map<std::string, uint64_t> budget;     // per placement name
    bool allow_in_place = true;                 // false: copy the weights even where the placement imports files
};

// The plan for these inputs and options. Throws std::runtime_error naming the placement when one the options ask
// for does not exist on the device.
MemoryPlan plan_memory(const PlanInputs& in, const ModelOptions& options);

// The tensors of a checkpoint as the model will hold them, checked against the config (every tensor's name, shape
// and dtype): the same checks loading does. unused: checkpoint tensors the config does not use.
std::vector<WeightTensor> checked_weights(const ModelConfig& config, const Checkpoint& checkpoint,
                                          const QuantChoice& quantize, const std::string& dir,
                                          std::vector<std::string>* unused = nullptr);

// Sizes as people read them: "98.2 GB" (powers of 1000), and "40 MiB" where a figure is a power-of-two size.
std::string size_text(uint64_t bytes);

// The plan as a table for people: per placement the bytes of each use, the plugin's, the total, what is available
// and whether it fits; then weights by dtype and the per-sequence / per-token figures.
std::string plan_table(const MemoryPlan& plan);
// The same for scripts.
nlohmann::json plan_json(const MemoryPlan& plan);

// What was allocated beside the plan, per placement: the model's buffers (per placement index) and the plugin's
// own allocations (Backend::internal_use), in one line: "memory allocated: heap 1.2 GB of 1.2 GB planned (+0.0 %),
// the plugin's own 8.4 MB of 8.4 MB planned; ...".
std::string allocated_table(const MemoryPlan& plan, const std::vector<uint64_t>& model,
                            const std::vector<ops::InternalUse>& plugin);

// Where the sizes that a refusal suggests changing came from (keys "context", "sequences", "cache_dtype", "chunk",
// "budget.NAME"): "--context", "context in configs/x.toml line 4". A key without an entry is named by its option.
using OptionOrigins = std::map<std::string, std::string>;

// The sentence that refuses a plan that does not fit: the first placement over its limit, what it needs and of
// what, what is available and where that limit came from, and what to change.
std::string refusal(const MemoryPlan& plan, const OptionOrigins& origin);

// context = "auto": the largest context, a multiple of `step` tokens and at most `max_context`, whose plan fits;
// plan_for(context) builds the plan. `reason` says what it picked and why it stops there. Throws
// std::runtime_error with the refusal when not even `step` tokens fit.
struct ContextChoice {
    int64_t context = 0;
    std::string reason;
};
ContextChoice choose_context(const std::function<MemoryPlan(int64_t)>& plan_for, int64_t step, int64_t max_context,
                             const OptionOrigins& origin);

}  // namespace halo
