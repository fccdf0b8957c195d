// Device memory for the temporaries of one op (projections, partial sums). Each op calls begin(total) and then
// take()s its pieces; the next op reuses the same memory, ordered by the recorder's hazard barriers. The buffer
// grows to the largest total asked so far (or reserved); the old one is freed once the work recorded so far has
// completed. Each op computes its total with a sizing function (ops.h) that the memory plan calls too.
#pragma once

#include <cstdint>

#include "plugins/vulkan/exec/recorder.h"

namespace halo::vk {

// Bytes one take of `bytes` consumes: rounded up to the storage alignment, plus 16.
inline uint64_t workspace_cost(uint64_t bytes, uint64_t storage_align) {
    return (bytes + 16 + storage_align - 1) / storage_align * storage_align;
}

class Workspace {
public:
    static constexpr const char* kWhat = "workspace (temporaries of the largest op)";

    Workspace(Memory& memory, Recorder& recorder, const DeviceCaps& caps, int32_t placement)
        : memory_(memory), recorder_(recorder), caps_(caps), placement_(placement) {}
    ~Workspace();

    int32_t placement() const { return placement_; }
    // Room for takes totalling `bytes` (each rounded up by cost()); `what` names the op.
    void begin(uint64_t bytes, const char* what);
    View take(uint64_t bytes);
    // Bytes one take of `bytes` consumes, for computing begin()'s total.
    uint64_t cost(uint64_t bytes) const { return workspace_cost(bytes, caps_.storage_align); }
    // Holds at least `bytes` now, so that no op asking for up to that many allocates later.
    void reserve(uint64_t bytes);

private:
    void grow(uint64_t bytes, const char* what);

    Memory& memory_;
    Recorder& recorder_;
    const DeviceCaps& caps_;
    int32_t placement_;
    VulkanBuffer* buffer_ = nullptr;
    uint64_t used_ = 0;
    const char* what_ = "";
};

}  // namespace halo::vk
