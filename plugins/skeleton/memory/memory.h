// Memory: the placements of DeviceInfo, and buffers in them. The skeleton's one placement is host memory. A real
// backend keeps its own handle in its Buffer subclass (a hipMalloc pointer, a VkBuffer and its memory) and sets
// Buffer::host only where the host can address the memory.
#pragma once

#include <cstdint>

#include "ops/backend.h"

namespace halo::skeleton {

struct HostMemory : ops::Buffer {
    bool owned = true;  // false for memory import_host() wraps
    ~HostMemory() override;
};

// Allocates, imports and copies for one device. Every call checks its placement index and byte range and throws
// ops::Error naming them; allocate() throws ops::OutOfMemory when the placement cannot hold the request.
class Memory {
public:
    explicit Memory(const ops::DeviceInfo& info) : info_(info) {}

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

    const ops::DeviceInfo& info_;
};

}  // namespace halo::skeleton
