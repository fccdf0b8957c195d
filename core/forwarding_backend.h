// Base of Backend decorators (profiling, check mode): every call goes to the wrapped backend unless overridden.
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

    void embedding(const ops::EmbeddingParams& p) override { inner_.embedding(p); }
    void rms_norm(const ops::RmsNormParams& p) override { inner_.rms_norm(p); }
    void add(const ops::AddParams& p) override { inner_.add(p); }
    void linear(const ops::LinearParams& p) override { inner_.linear(p); }
    void mlp(const ops::MlpParams& p) override { inner_.mlp(p); }
    void kda(const ops::KdaParams& p, const ops::SeqBatch& b) override { inner_.kda(p, b); }
    void mla(const ops::MlaParams& p, const ops::SeqBatch& b) override { inner_.mla(p, b); }
    void moe(const ops::MoeParams& p) override { inner_.moe(p); }

protected:
    ops::Backend& inner_;
};

}  // namespace halo
