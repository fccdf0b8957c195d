// Base of Backend decorators (profiling, check mode): every call goes to the wrapped backend unless overridden.
// Every op method comes to on_op(), so a decorator that treats all ops alike overrides that one function and stays
// correct when an op is added to ops/op_list.h; one that changes a single op may override that op's method instead.
#pragma once

#include "ops/backend.h"

namespace halo {

class ForwardingBackend : public ops::Backend {
public:
    explicit ForwardingBackend(ops::Backend& inner) : inner_(inner) {}

    const ops::DeviceInfo& device() const override { return inner_.device(); }
    uint64_t internal_bytes() const override { return inner_.internal_bytes(); }
    std::vector<ops::InternalUse> internal_use() const override { return inner_.internal_use(); }
    std::vector<ops::InternalUse> plan_internal(const ops::StepShape& s) const override { return inner_.plan_internal(s); }
    void reserve_internal(const ops::StepShape& s) override { inner_.reserve_internal(s); }
    ops::Buffer* allocate(ops::MemoryUse u, int32_t p, uint64_t b) override { return inner_.allocate(u, p, b); }
    ops::Buffer* import_host(ops::MemoryUse u, int32_t p, void* d, uint64_t b) override { return inner_.import_host(u, p, d, b); }
    void release(ops::Buffer* b) override { inner_.release(b); }
    void write(ops::Buffer* d, uint64_t o, const void* s, uint64_t n) override { inner_.write(d, o, s, n); }
    void read(const ops::Buffer* s, uint64_t o, void* d, uint64_t n) override { inner_.read(s, o, d, n); }
    void zero(ops::Buffer* d, uint64_t o, uint64_t n) override { inner_.zero(d, o, n); }
    void copy(ops::Buffer* d, uint64_t doff, const ops::Buffer* s, uint64_t soff, uint64_t n) override {
        inner_.copy(d, doff, s, soff, n);
    }
    void begin_step() override { inner_.begin_step(); }
    void end_step() override { inner_.end_step(); }
    void synchronize() override { inner_.synchronize(); }

#define HALO_OP_FORWARD(name, Params, call, ...) \
    void name(HALO_OP_SIGNATURE(Params, call)) override { on_op(ops::OpCall(HALO_OP_ARGS(call))); }
    HALO_OPS(HALO_OP_FORWARD)
#undef HALO_OP_FORWARD

protected:
    // Every op, whichever it is; by default it runs on the wrapped backend.
    virtual void on_op(const ops::OpCall& call) { ops::run_op(inner_, call); }

    ops::Backend& inner_;
};

}  // namespace halo
