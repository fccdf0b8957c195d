// The skeleton Backend: the device, its memory, execution, and the op table, each delegated to its own folder.
// Every op answers ops::Unsupported. Copy this folder to start a new backend (README.md).
#pragma once

#include "ops/backend.h"
#include "plugins/skeleton/context.h"
#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

class SkeletonBackend final : public ops::Backend {
public:
    explicit SkeletonBackend(const ops::BackendOptions& options) : ctx_(open_device(options)) {}

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
    // The skeleton holds nothing beside its buffers; a backend with temporaries reports them in internal_use() and
    // plans them in plan_internal() (see plugins/cpu/plan.cpp, plugins/vulkan/plan.cpp).

    // ---- execution (exec/) ------------------------------------------------------------------------------------
    void begin_step() override { ctx_.exec.begin_step(); }
    void end_step() override { ctx_.exec.end_step(); }
    void synchronize() override { ctx_.exec.synchronize(); }

    // ---- ops (ops/<op>/): each op of ops/op_list.h runs skeleton::<op>(ctx_, ...) -------------------------------
#define HALO_SKELETON_OP(name, Params, call, ...) \
    void name(HALO_OP_SIGNATURE(Params, call)) override { skeleton::name(ctx_, HALO_OP_ARGS(call)); }
    HALO_OPS(HALO_SKELETON_OP)
#undef HALO_SKELETON_OP

private:
    Context ctx_;
};

}  // namespace halo::skeleton
