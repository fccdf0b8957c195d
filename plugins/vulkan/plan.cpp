// The Vulkan plugin's own memory for a step shape: the workspace (the largest op of any step), upload staging per
// frame and, where the host cannot address the logits, a readback buffer. The workspace comes from the sizing
// functions the ops call; staging from the recorder's block policy applied to a step's uploads.
#include <algorithm>

#include "plugins/vulkan/backend.h"
#include "plugins/vulkan/moe/moe_shared.h"
#include "plugins/vulkan/ops.h"
#include "plugins/vulkan/shaders/interop.h"

namespace halo::vk {

using namespace halo::ops;

uint64_t planned_workspace(const Context& c, const StepShape& s) {
    const DeviceCaps& caps = c.caps();
    const int64_t K = s.kda_head_dim;
    const int64_t widest_expert = std::max(s.expert_inter, s.shared_inter);
    uint64_t worst = 0;
    for (int64_t T = 1; T <= s.max_rows; ++T) {  // a step of T rows, any of its runs at the largest context
        if (s.dense_layers > 0) worst = std::max(worst, mlp_workspace(caps, T, s.dense_inter));
        if (s.kda_layers > 0)
            worst = std::max(worst, kda_workspace(caps, T, s.kda_heads, K, K, K, s.kda_chunk,
                                                  kda_chunked(caps, s.kda_form, K, T)));
        if (s.mla_layers > 0)
            worst = std::max(worst, mla_workspace(caps, T, s.mla_heads, s.mla_nope_dim, s.mla_rope_dim, s.mla_v_dim,
                                                  s.mla_rank,
                                                  mla_splits(c.mla_kernel, T, s.mla_heads, s.mla_rank, s.max_context)));
        if (s.moe_layers > 0)
            worst = std::max(worst, moe_workspace(caps, T, s.experts, s.hidden, s.top_k, s.shared_inter > 0,
                                                  widest_expert));
    }
    return worst;
}

namespace {

// Bytes one step uploads through the frame's staging: token ids and logit rows written inside the step, the batch
// descriptors (once per step), KDA's run and chunk lists per KDA layer, one expert table per MoE layer (one pass:
// the experts of a layer within HALO_MOE_BINDINGS weight windows).
uint64_t step_uploads(const Context& c, const StepShape& s) {
    const uint64_t a = c.caps().storage_align;
    auto up = [&](uint64_t bytes) { return Arena::cost(bytes, a); };
    const uint64_t R = uint64_t(s.max_rows), S = uint64_t(std::min(s.max_sequences, s.max_rows));
    const uint64_t pages = uint64_t((s.max_context + s.page_size - 1) / s.page_size);
    uint64_t u = up(4 * R) + up(4 * uint64_t(s.max_logit_rows));
    if (s.kda_layers + s.mla_layers > 0) u += up(sizeof(glsl::RunDesc) * S) + up(4 * S * pages) + up(4 * R);
    const uint64_t chunks = R / uint64_t(std::max(1, s.kda_chunk)) + S;
    u += uint64_t(s.kda_layers) * (up(4 * S) + up(8 * chunks) + up(4 * S));
    u += uint64_t(s.moe_layers) * up(sizeof(glsl::ExpertRef) * uint64_t(s.experts + 1));
    return u;
}

}  // namespace

std::vector<InternalUse> plan_internal(const Context& c, const StepShape& s) {
    std::vector<InternalUse> out;
    out.push_back({Workspace::kWhat, c.ws.placement(), planned_workspace(c, s)});
    // Steps are recorded into one frame at a time when every buffer the core writes is host-mapped (writes outside
    // a step are then plain copies); otherwise weight uploads run through all the frames in flight.
    const auto& placements = c.memory.placements();
    bool mapped = true;
    for (int u = 0; u < kMemoryUseCount; ++u)
        if (s.placement[u] >= 0 && size_t(s.placement[u]) < placements.size() && !placements[size_t(s.placement[u])].mapped)
            mapped = false;
    const uint64_t frames = mapped ? 1 : Recorder::kMaxFrames;
    out.push_back({Memory::kUploadStaging, c.memory.staging_placement(), frames * Arena::held_for(step_uploads(c, s))});
    // Logits are read back through a staging buffer when the scratch placement is not host-mapped.
    const int32_t scratch = s.placement[int(MemoryUse::scratch)];
    if (scratch >= 0 && size_t(scratch) < placements.size() && !placements[size_t(scratch)].mapped) {
        const uint64_t logits = uint64_t(s.max_logit_rows) * uint64_t(s.vocab) * 4;
        out.push_back({Memory::kReadbackStaging, c.memory.staging_placement(),
                       std::max<uint64_t>(std::min(logits, VulkanBackend::kTransferChunk), uint64_t(1) << 20)});
    }
    return out;
}

}  // namespace halo::vk
