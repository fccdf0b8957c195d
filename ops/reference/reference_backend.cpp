#include "ops/reference/reference_backend.h"

#include <cstring>

#include "ops/reference/host_buffer.h"
#include "ops/reference/reference.h"

namespace halo::ref {

using namespace halo::ops;

namespace {

class ReferenceBackend final : public Backend {
public:
    ReferenceBackend() {
        info_.name = "reference (double precision, single thread)";
        info_.kind = "cpu";
        info_.unified_memory = true;
        PlacementInfo heap;
        heap.name = "heap";
        heap.description = "host memory";
        heap.host_visible = true;
        heap.imports_host = true;
        info_.placements.push_back(heap);
        for (auto& d : info_.default_placement) d = "heap";
    }
    const DeviceInfo& device() const override { return info_; }
    Buffer* allocate(MemoryUse use, int32_t placement, uint64_t bytes) override {
        return new HostBuffer(use, placement, bytes);
    }
    Buffer* import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) override {
        return new HostBuffer(use, placement, data, bytes);
    }
    void release(Buffer* b) override { delete b; }
    void write(Buffer* dst, uint64_t off, const void* src, uint64_t n) override {
        std::memcpy(static_cast<char*>(dst->host) + off, src, n);
    }
    void read(const Buffer* src, uint64_t off, void* dst, uint64_t n) override {
        std::memcpy(dst, static_cast<const char*>(src->host) + off, n);
    }
    void zero(Buffer* dst, uint64_t off, uint64_t n) override { std::memset(static_cast<char*>(dst->host) + off, 0, n); }
    void copy(Buffer* dst, uint64_t doff, const Buffer* src, uint64_t soff, uint64_t n) override {
        std::memmove(static_cast<char*>(dst->host) + doff, static_cast<const char*>(src->host) + soff, n);
    }
#define HALO_REFERENCE_OP(name, Params, call, ...) \
    void name(HALO_OP_SIGNATURE(Params, call)) override { ref::name(HALO_OP_ARGS(call)); }
    HALO_OPS(HALO_REFERENCE_OP)
#undef HALO_REFERENCE_OP

private:
    DeviceInfo info_;
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace halo::ref
