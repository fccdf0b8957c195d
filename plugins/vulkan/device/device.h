// The logical device: one compute queue, the features and limits the shaders and the memory code rely on, and
// the extension entry points in use (push descriptors, host-memory import, memory budget).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

#include "plugins/vulkan/device/instance.h"

namespace halo::vk {

struct DeviceCaps {
    bool subgroup_ops = false;        // subgroup arithmetic and shuffles in compute shaders ("sg" shader variants)
    uint32_t subgroup_size = 1;
    bool push_descriptors = false;    // VK_KHR_push_descriptor
    bool memory_budget = false;       // VK_EXT_memory_budget
    bool host_import = false;         // VK_EXT_external_memory_host
    uint64_t import_alignment = 4096; // minImportedHostPointerAlignment
    bool timestamps = false;          // compute queue supports timestamps
    float timestamp_period_ns = 1;
    uint64_t max_range = 0;           // maxStorageBufferRange: largest span one shader binding may see
    uint64_t max_piece = 0;           // largest single VkDeviceMemory / VkBuffer (allocation and buffer limits)
    uint64_t storage_align = 16;      // minStorageBufferOffsetAlignment (at least 16)
    uint32_t max_shared = 16384;      // maxComputeSharedMemorySize
    uint32_t max_groups[3] = {65535, 65535, 65535};
};

class Device {
public:
    // Creates the logical device on pd. Test overrides (for exercising split and fallback paths on small data):
    //   HALO_VULKAN_MAX_RANGE=<bytes>   pretend maxStorageBufferRange is this small
    //   HALO_VULKAN_MAX_PIECE=<bytes>   pretend single allocations are limited to this
    //   HALO_VULKAN_NO_SUBGROUP=1       use the shared-memory shader variants
    //   HALO_VULKAN_NO_PUSH_DESCRIPTORS=1  allocate descriptor sets instead of pushing them
    //   HALO_VULKAN_MLA_KERNEL=per_head|heads  force an MLA attention kernel (read by Context)
    // (The recorder reads HALO_VULKAN_BARRIER_ALL=1, a barrier before every command, and HALO_VULKAN_NO_BARRIERS=1,
    // none between commands, which validation mode must then report.)
    Device(const Instance& instance, const PhysicalDevice& pd);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    VkDevice handle() const { return device_; }
    VkQueue queue() const { return queue_; }
    uint32_t family() const { return family_; }
    const PhysicalDevice& physical() const { return pd_; }
    const DeviceCaps& caps() const { return caps_; }
    std::vector<std::string> notes() const { return notes_; }

    PFN_vkCmdPushDescriptorSetKHR push_descriptor_set = nullptr;
    PFN_vkGetMemoryHostPointerPropertiesEXT host_pointer_properties = nullptr;

private:
    const PhysicalDevice& pd_;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t family_ = 0;
    DeviceCaps caps_;
    std::vector<std::string> notes_;
};

}  // namespace halo::vk
