// Buffers in the three placements of a HIP device (device/device.h): device (hipMalloc), pinned (hipHostMalloc, or
// a host range registered with hipHostRegister by import_host), managed (hipMallocManaged). Buffer::host is set for
// pinned and managed buffers; device buffers are reached through write/read/copy, which run on the backend's stream.
#pragma once

#include <cstdint>

#include "ops/backend.h"
#include "plugins/hip/device/device.h"
#include "plugins/hip/exec/execution.h"

namespace halo::hip {

struct HipBuffer : ops::Buffer {
    enum class Kind { device, pinned, managed, registered };
    Kind kind = Kind::device;
    void* device = nullptr;  // the address kernels use
    ~HipBuffer() override;
};

// The device address of a tensor's element 0 (buffers of this plugin only).
inline unsigned char* device_address(const ops::Buffer* b, uint64_t offset) {
    return static_cast<unsigned char*>(static_cast<const HipBuffer*>(b)->device) + offset;
}

class Memory {
public:
    Memory(const Device& device, Execution& exec) : device_(device), exec_(exec) {}

    ops::Buffer* allocate(ops::MemoryUse use, int32_t placement, uint64_t bytes);
    ops::Buffer* import_host(ops::MemoryUse use, int32_t placement, void* data, uint64_t bytes);
    void release(ops::Buffer* buffer);
    void write(ops::Buffer* dst, uint64_t offset, const void* src, uint64_t bytes);
    void read(const ops::Buffer* src, uint64_t offset, void* dst, uint64_t bytes);
    void zero(ops::Buffer* dst, uint64_t offset, uint64_t bytes);
    void copy(ops::Buffer* dst, uint64_t dst_offset, const ops::Buffer* src, uint64_t src_offset, uint64_t bytes);

private:
    void check_placement(int32_t placement) const;
    static void check_range(const ops::Buffer* b, uint64_t offset, uint64_t bytes);

    const Device& device_;
    Execution& exec_;
    bool warned_xnack_ = false;
};

}  // namespace halo::hip
