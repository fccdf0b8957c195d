#include "plugins/vulkan/exec/workspace.h"

#include <algorithm>

namespace halo::vk {

Workspace::~Workspace() {
    if (buffer_) memory_.release(buffer_);
}

void Workspace::begin(uint64_t bytes, const char* what) {
    what_ = what;
    used_ = 0;
    if (!buffer_ || buffer_->bytes < bytes) grow(bytes, what);
}

void Workspace::reserve(uint64_t bytes) {
    if (!buffer_ || buffer_->bytes < bytes) grow(bytes, "the reserved workspace");
}

void Workspace::grow(uint64_t bytes, const char* what) {
    if (bytes > caps_.max_piece)
        throw ops::OutOfMemory("vulkan: " + std::string(what) + " needs " + std::to_string(bytes) +
                               " bytes of temporaries, more than the device's largest allocation (" +
                               std::to_string(caps_.max_piece) + " bytes); lower the step size (--chunk)");
    if (buffer_) {
        VulkanBuffer* old = buffer_;
        Memory* m = &memory_;
        recorder_.defer([m, old] { m->release(old); });
        buffer_ = nullptr;
    }
    buffer_ = memory_.allocate(ops::MemoryUse::scratch, placement_, bytes);
    memory_.mark_internal(buffer_, kWhat);
}

View Workspace::take(uint64_t bytes) {
    const uint64_t need = cost(bytes);
    if (!buffer_ || used_ + need > buffer_->bytes)
        throw ops::Error(std::string("vulkan: internal error: ") + what_ + " took more temporaries than it reserved");
    View v{buffer_->pieces[0].buffer, used_, std::min<uint64_t>(need, caps_.max_range), 0};
    if (bytes > caps_.max_range)
        throw ops::Error(std::string("vulkan: ") + what_ + " needs a temporary of " + std::to_string(bytes) +
                         " bytes, more than the device's storage-buffer range (" + std::to_string(caps_.max_range) +
                         " bytes); lower the step size (--chunk)");
    used_ += need;
    return v;
}

}  // namespace halo::vk
