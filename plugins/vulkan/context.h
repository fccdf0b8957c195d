// What every Vulkan op needs: the device, memory, recorder, pipelines and workspace, plus tensor bindings (with
// the checks that make buffer splitting safe), weight row blocks for tensors larger than one binding, and the
// step's batch descriptor on the device.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ops/backend.h"
#include "plugins/vulkan/exec/pipelines.h"
#include "plugins/vulkan/exec/recorder.h"
#include "plugins/vulkan/exec/workspace.h"
#include "plugins/vulkan/memory/memory.h"

namespace halo::vk {

// A block of rows of a weight matrix that one binding can hold (and, Q4/Q8, its rows of scales another).
struct RowBlock {
    int64_t first = 0, count = 0;
    View view;
    View scales;  // Q4/Q8 only
};

// Bytes a binding of this dtype counts in: the element for F32/F16/BF16/I32, the 32-bit word for Q4/Q8.
inline uint32_t storage_unit(ops::DType t) { return ops::is_quantized(t) ? 4u : uint32_t(ops::dtype_size(t)); }

// The batch of a KDA/MLA op as the shaders see it.
struct BatchViews {
    View runs;     // RunDesc[n_runs]
    View pages;    // int32 page table of all runs (RunDesc::page_base indexes it)
    View row_run;  // int32[n_rows]: the run of each row
    int32_t n_runs = 0, n_rows = 0;
    int32_t max_tokens = 0;   // longest run
    int32_t max_context = 0;  // largest pos + n_tokens
};

class Context {
public:
    Context(const Device& device, Memory& memory, Recorder& recorder, Pipelines& pipelines, Workspace& workspace);
    ~Context();

    const Device& device;
    Memory& memory;
    Recorder& rec;
    Pipelines& pipelines;
    Workspace& ws;

    const DeviceCaps& caps() const { return device.caps(); }
    // A small zeroed buffer bound where an optional tensor is absent.
    View dummy() const { return dummy_; }

    // Binding of a whole tensor. Throws a sentence naming `what` when the tensor crosses a piece boundary of a
    // split buffer or spans more than maxStorageBufferRange (weights use row_blocks() instead).
    View view(const ops::Tensor& t, const char* what) const;
    // Binding of the scales of a Q4/Q8 tensor (checks as view()).
    View scale_view(const ops::Tensor& t, const char* what) const;
    View view(const ops::Buffer* buffer, uint64_t offset, uint64_t bytes, uint32_t elem_size, const char* what) const;
    // The tensor as few row blocks as possible, each inside one piece and one binding range (and so its scales).
    std::vector<RowBlock> row_blocks(const ops::Tensor& t, const char* what) const;

    // Uploads the batch (reusing the previous upload of the same frame when it is identical).
    BatchViews upload_batch(const ops::SeqBatch& batch);

    const Pipeline& pipeline(const PipelineSpec& spec) { return pipelines.get(spec); }

    // State an op file keeps between calls (its caches), by name.
    std::map<std::string, std::shared_ptr<void>> op_state;

    // MLA attention kernel: chosen by shape, or forced with HALO_VULKAN_MLA_KERNEL=per_head|heads (tests).
    enum class MlaKernel { automatic, per_head, heads };
    MlaKernel mla_kernel = MlaKernel::automatic;

private:
    VulkanBuffer* dummy_buffer_ = nullptr;
    View dummy_;
    std::vector<uint8_t> last_batch_;  // serialised content of the last upload
    BatchViews last_views_;
    uint64_t last_submits_ = ~uint64_t(0);
};

// Workgroups for n items, per per workgroup.
inline uint32_t groups(int64_t n, int64_t per) { return uint32_t((n + per - 1) / per); }

}  // namespace halo::vk
