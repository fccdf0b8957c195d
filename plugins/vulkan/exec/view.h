// What a shader binding sees of a tensor: a VkBuffer window and the element offset of the tensor inside it.
#pragma once

#include <cstdint>

#include <vulkan/vulkan.h>

namespace halo::vk {

struct View {
    VkBuffer buffer = VK_NULL_HANDLE;
    uint64_t offset = 0;  // binding offset (a multiple of minStorageBufferOffsetAlignment)
    uint64_t range = 0;   // binding range in bytes
    uint32_t elem = 0;    // element offset of the tensor inside the window, in its own element size
};

// One binding of a dispatch and whether the shader writes it (for barrier placement).
struct Binding {
    View view;
    bool write = false;
};

inline Binding in(const View& v) { return {v, false}; }
inline Binding out(const View& v) { return {v, true}; }

}  // namespace halo::vk
