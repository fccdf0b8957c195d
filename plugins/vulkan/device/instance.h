// The Vulkan instance and the physical devices it sees: instance creation (with the Khronos validation layer and
// its synchronisation checks on request), the devices with a compute queue, and the choice of one by index or name.
// Validation messages are counted; the backend turns errors into exceptions at its next read.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

namespace halo::vk {

struct PhysicalDevice {
    VkPhysicalDevice handle = VK_NULL_HANDLE;
    int32_t index = 0;                  // position in vkEnumeratePhysicalDevices order
    std::string name;                   // "AMD Radeon 8060S Graphics (RADV STRIX_HALO)"
    std::string kind;                   // DeviceInfo::kind: integrated-gpu, discrete-gpu, virtual-gpu, cpu, other
    bool unified_memory = false;        // integrated GPU or CPU device: device memory is host memory
    uint32_t compute_family = UINT32_MAX;  // a queue family with compute, or UINT32_MAX when there is none
    VkPhysicalDeviceProperties properties{};
    VkPhysicalDeviceMemoryProperties memory{};

    // "0: AMD Radeon 8060S (integrated-gpu, unified memory, Vulkan 1.3, heaps: 0 device-local 96.0 GB, ...)"
    std::string describe() const;
};

class Instance {
public:
    // Throws ops::Error when there is no Vulkan driver, or when validation is asked for and the layer is missing.
    explicit Instance(bool validation);
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    VkInstance handle() const { return instance_; }
    bool validation() const { return validation_; }
    const std::vector<PhysicalDevice>& devices() const { return devices_; }

    // The device to use: index >= 0 picks by index, a non-empty name by substring, else the best one (discrete,
    // then integrated, then others, CPU devices last). Throws ops::Error naming the devices when none matches or
    // the chosen one has no compute queue.
    const PhysicalDevice& choose(int32_t index, const std::string& name) const;

    // Validation errors reported so far, and the first message.
    uint64_t validation_errors() const { return errors_.load(); }
    std::string first_validation_error() const;

private:
    static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data, void* self);

    VkInstance instance_ = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
    bool validation_ = false;
    std::vector<PhysicalDevice> devices_;
    std::atomic<uint64_t> errors_{0};
    mutable std::mutex mutex_;
    std::string first_error_;
};

}  // namespace halo::vk
