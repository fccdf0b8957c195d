// The Vulkan Backend: the device, memory placements and buffer pieces, host transfers ordered with the recorded
// work, the step model (one command buffer per forward step, submitted at end_step; the host waits only in read()
// and synchronize()), and the op table.
#pragma once

#include <memory>

#include "ops/backend.h"
#include "plugins/vulkan/context.h"
#include "plugins/vulkan/device/device.h"
#include "plugins/vulkan/device/instance.h"
#include "plugins/vulkan/ops.h"

namespace halo::vk {

class VulkanBackend final : public ops::Backend {
public:
    explicit VulkanBackend(const ops::BackendOptions& options);
    ~VulkanBackend() override;

    const ops::DeviceInfo& device() const override;
    uint64_t internal_bytes() const override;
    std::vector<ops::InternalUse> internal_use() const override;
    std::vector<ops::InternalUse> plan_internal(const ops::StepShape& shape) const override;
    void reserve_internal(const ops::StepShape& shape) override;

    // Host transfers outside a step (weight uploads, reads of memory the host cannot address) go in chunks of this.
    static constexpr uint64_t kTransferChunk = uint64_t(64) << 20;

    ops::Buffer* allocate(ops::MemoryUse use, int32_t placement, uint64_t bytes) override;
    ops::Buffer* import_host(ops::MemoryUse use, int32_t placement, void* data, uint64_t bytes) override;
    void release(ops::Buffer* buffer) override;
    void write(ops::Buffer* dst, uint64_t offset, const void* src, uint64_t bytes) override;
    void read(const ops::Buffer* src, uint64_t offset, void* dst, uint64_t bytes) override;
    void zero(ops::Buffer* dst, uint64_t offset, uint64_t bytes) override;
    void copy(ops::Buffer* dst, uint64_t dst_offset, const ops::Buffer* src, uint64_t src_offset, uint64_t bytes) override;

    void begin_step() override;
    void end_step() override;
    void synchronize() override;

    // The op table: each op of ops/op_list.h records vk::<op> (plugins/vulkan/ops.h), then submits it when it was
    // called outside a step.
#define HALO_VK_OP(name, Params, call, ...)                  \
    void name(HALO_OP_SIGNATURE(Params, call)) override {    \
        vk::name(*ctx_, HALO_OP_ARGS(call));                 \
        after_op();                                          \
    }
    HALO_OPS(HALO_VK_OP)
#undef HALO_VK_OP

    // For the Vulkan-specific tests.
    Context& context() { return *ctx_; }
    const Instance& instance() const { return *instance_; }
    const Device& vk_device() const { return *device_; }
    Recorder& recorder() { return *recorder_; }

private:
    struct Segment {
        const Piece* piece;
        uint64_t local;  // byte offset in the piece's VkBuffer
        uint64_t at;     // byte offset in the logical buffer
        uint64_t bytes;
    };
    // The pieces' parts covering [offset, offset + bytes): one part per byte, or with every_copy every copy of
    // duplicated (overlapping, split weight) bytes.
    std::vector<Segment> segments(const ops::Buffer* b, uint64_t offset, uint64_t bytes, bool every_copy = false) const;
    void check_range(const ops::Buffer* b, uint64_t offset, uint64_t bytes, const char* what) const;
    void after_op();  // submits ops recorded outside a step
    void check_validation();

    std::unique_ptr<Instance> instance_;
    std::unique_ptr<Device> device_;
    std::unique_ptr<Memory> memory_;
    std::unique_ptr<Recorder> recorder_;
    std::unique_ptr<Pipelines> pipelines_;
    std::unique_ptr<Workspace> workspace_;
    std::unique_ptr<Context> ctx_;
    mutable ops::DeviceInfo info_;
    bool in_step_ = false;
    uint64_t reported_errors_ = 0;
    VulkanBuffer* readback_ = nullptr;  // staging for reads of memory the host cannot address
};

}  // namespace halo::vk
