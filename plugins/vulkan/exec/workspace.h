// Device memory for the temporaries of one op (projections, partial sums). Each op calls begin(total) and then
// take()s its pieces; the next op reuses the same memory, ordered by the recorder's hazard barriers. The buffer
// grows when an op needs more; the old one is freed once the work recorded so far has completed.
#pragma once

#include <cstdint>

#include "plugins/vulkan/exec/recorder.h"

namespace halo::vk {

class Workspace {
public:
    Workspace(Memory& memory, Recorder& recorder, const DeviceCaps& caps, int32_t placement)
        : memory_(memory), recorder_(recorder), caps_(caps), placement_(placement) {}
    ~Workspace();

    // Room for takes totalling `bytes` (each rounded up to the storage alignment plus 16); `what` names the op.
    void begin(uint64_t bytes, const char* what);
    View take(uint64_t bytes);
    // Bytes one take of `bytes` consumes, for computing begin()'s total.
    uint64_t cost(uint64_t bytes) const { return (bytes + 16 + caps_.storage_align - 1) / caps_.storage_align * caps_.storage_align; }

private:
    Memory& memory_;
    Recorder& recorder_;
    const DeviceCaps& caps_;
    int32_t placement_;
    VulkanBuffer* buffer_ = nullptr;
    uint64_t used_ = 0;
    const char* what_ = "";
};

}  // namespace halo::vk
