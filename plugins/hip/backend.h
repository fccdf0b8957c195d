// The HIP Backend: the device, its memory, one stream, and the op table, each delegated to its own folder.
#pragma once

#include "ops/backend.h"
#include "plugins/hip/context.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

// Bytes of op workspace the largest op of any step up to `shape` takes (plan.cpp).
uint64_t planned_workspace(const ops::StepShape& shape);

class HipBackend final : public ops::Backend {
public:
    explicit HipBackend(const ops::BackendOptions& options) : ctx_(open_device(options)) {}
    ~HipBackend() override {
        try {
            ctx_.exec.synchronize();
        } catch (...) {
        }
    }

    const ops::DeviceInfo& device() const override { return ctx_.device.info; }

    // ---- memory (memory/) -------------------------------------------------------------------------------------
    ops::Buffer* allocate(ops::MemoryUse use, int32_t placement, uint64_t bytes) override {
        return ctx_.memory.allocate(use, placement, bytes);
    }
    ops::Buffer* import_host(ops::MemoryUse use, int32_t placement, void* data, uint64_t bytes) override {
        return ctx_.memory.import_host(use, placement, data, bytes);
    }
    void release(ops::Buffer* buffer) override { ctx_.memory.release(buffer); }
    void write(ops::Buffer* dst, uint64_t offset, const void* src, uint64_t bytes) override {
        ctx_.memory.write(dst, offset, src, bytes);
    }
    void read(const ops::Buffer* src, uint64_t offset, void* dst, uint64_t bytes) override {
        ctx_.memory.read(src, offset, dst, bytes);
    }
    void zero(ops::Buffer* dst, uint64_t offset, uint64_t bytes) override { ctx_.memory.zero(dst, offset, bytes); }
    void copy(ops::Buffer* dst, uint64_t dst_offset, const ops::Buffer* src, uint64_t src_offset,
              uint64_t bytes) override {
        ctx_.memory.copy(dst, dst_offset, src, src_offset, bytes);
    }
    uint64_t internal_bytes() const override { return ctx_.ws.bytes(); }
    std::vector<ops::InternalUse> internal_use() const override {
        return {{Workspace::kWhat, kDevice, ctx_.ws.bytes()}};
    }
    std::vector<ops::InternalUse> plan_internal(const ops::StepShape& shape) const override {
        return {{Workspace::kWhat, kDevice, planned_workspace(shape)}};
    }
    void reserve_internal(const ops::StepShape& shape) override { ctx_.ws.reserve(planned_workspace(shape)); }

    // ---- execution (exec/) ------------------------------------------------------------------------------------
    void begin_step() override { ctx_.exec.begin_step(); }
    void end_step() override {
        ctx_.exec.end_step();
        ctx_.ws.compact();  // after a step whose op outgrew the workspace (waits for it then): one block again
    }
    void synchronize() override { ctx_.exec.synchronize(); }

    // ---- ops (ops/<op>/): each op of ops/op_list.h runs hip::<op>(ctx_, ...) ------------------------------------
#define HALO_HIP_OP(name, Params, call, ...) \
    void name(HALO_OP_SIGNATURE(Params, call)) override { hip::name(ctx_, HALO_OP_ARGS(call)); }
    HALO_OPS(HALO_HIP_OP)
#undef HALO_HIP_OP

private:
    Context ctx_;
};

}  // namespace halo::hip
