#include "plugins/vulkan/device/device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "plugins/vulkan/device/check.h"

namespace halo::vk {

namespace {

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
}

uint64_t env_bytes(const char* name, uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    const uint64_t n = std::strtoull(v, nullptr, 10);
    return n ? n : fallback;
}

}  // namespace

Device::Device(const Instance& instance, const PhysicalDevice& pd) : pd_(pd) {
    (void)instance;
    family_ = pd.compute_family;
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> available(n);
    vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n, available.data());
    auto has = [&](const char* name) {
        for (const auto& e : available)
            if (std::strcmp(e.extensionName, name) == 0) return true;
        return false;
    };
    std::vector<const char*> extensions;
    caps_.push_descriptors = has(VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) && !env_flag("HALO_VULKAN_NO_PUSH_DESCRIPTORS");
    caps_.memory_budget = has(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    caps_.host_import = has(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME) && has(VK_KHR_EXTERNAL_MEMORY_EXTENSION_NAME);
    if (caps_.push_descriptors) extensions.push_back(VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    if (caps_.memory_budget) extensions.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    if (caps_.host_import) {
        extensions.push_back(VK_KHR_EXTERNAL_MEMORY_EXTENSION_NAME);
        extensions.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    }

    // Properties: limits, subgroups, maintenance3 (allocation limit), maintenance4 (buffer limit), host import.
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT host_props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props.pNext = &sg;
    sg.pNext = &m3;
    if (caps_.host_import) m3.pNext = &host_props;
    vkGetPhysicalDeviceProperties2(pd.handle, &props);
    const VkPhysicalDeviceLimits& lim = props.properties.limits;

    const uint32_t need_ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    caps_.subgroup_size = std::max<uint32_t>(1, sg.subgroupSize);
    caps_.subgroup_ops = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & need_ops) == need_ops &&
                         sg.subgroupSize >= 4 && !env_flag("HALO_VULKAN_NO_SUBGROUP");
    if (!caps_.subgroup_ops)
        notes_.push_back(env_flag("HALO_VULKAN_NO_SUBGROUP")
                             ? "subgroup operations turned off by HALO_VULKAN_NO_SUBGROUP: shared-memory reductions in use"
                             : "no subgroup arithmetic/shuffle in compute shaders: shared-memory reductions in use (slower)");
    if (!caps_.push_descriptors) notes_.push_back("no VK_KHR_push_descriptor: descriptor sets are allocated per dispatch");
    if (caps_.host_import) caps_.import_alignment = std::max<uint64_t>(host_props.minImportedHostPointerAlignment, 1);
    caps_.max_range = env_bytes("HALO_VULKAN_MAX_RANGE", lim.maxStorageBufferRange);
    caps_.max_range = std::min<uint64_t>(caps_.max_range, lim.maxStorageBufferRange) / 256 * 256;
    uint64_t piece = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (uint64_t(1) << 31);
    caps_.max_piece = std::min<uint64_t>(env_bytes("HALO_VULKAN_MAX_PIECE", piece), piece);
    caps_.max_piece = std::max<uint64_t>(caps_.max_piece / 65536 * 65536, 65536);
    caps_.storage_align = std::max<uint64_t>(lim.minStorageBufferOffsetAlignment, 16);
    caps_.max_shared = lim.maxComputeSharedMemorySize;
    for (int i = 0; i < 3; ++i) caps_.max_groups[i] = lim.maxComputeWorkGroupCount[i];
    caps_.timestamp_period_ns = lim.timestampPeriod;
    {
        uint32_t nf = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(pd.handle, &nf, nullptr);
        std::vector<VkQueueFamilyProperties> fam(nf);
        vkGetPhysicalDeviceQueueFamilyProperties(pd.handle, &nf, fam.data());
        caps_.timestamps = fam[family_].timestampValidBits > 0 && lim.timestampPeriod > 0;
    }
    if (caps_.max_shared < 16384)
        throw ops::Error("vulkan: device " + pd.name + " offers only " + std::to_string(caps_.max_shared) +
                         " bytes of compute shared memory; the shaders need 16384 (the Vulkan minimum)");

    // Features: 16-bit storage (BF16/F16 tensors are read and written as 16-bit words) and dynamic indexing of
    // storage-buffer arrays (the MoE expert weights).
    VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = &f11;
    vkGetPhysicalDeviceFeatures2(pd.handle, &f2);
    if (!f11.storageBuffer16BitAccess)
        throw ops::Error("vulkan: device " + pd.name + " lacks storageBuffer16BitAccess, which the plugin needs to read and "
                         "write BF16/F16 tensors as 16-bit words");
    if (!f2.features.shaderStorageBufferArrayDynamicIndexing)
        throw ops::Error("vulkan: device " + pd.name + " lacks shaderStorageBufferArrayDynamicIndexing, which the MoE "
                         "shaders need to pick an expert's weight buffer");
    VkPhysicalDeviceVulkan11Features en11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    en11.storageBuffer16BitAccess = VK_TRUE;
    VkPhysicalDeviceFeatures2 en{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    en.pNext = &en11;
    en.features.shaderStorageBufferArrayDynamicIndexing = VK_TRUE;

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo q{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    q.queueFamilyIndex = family_;
    q.queueCount = 1;
    q.pQueuePriorities = &priority;
    VkDeviceCreateInfo info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    info.pNext = &en;
    info.queueCreateInfoCount = 1;
    info.pQueueCreateInfos = &q;
    info.enabledExtensionCount = uint32_t(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    check(vkCreateDevice(pd.handle, &info, nullptr, &device_), ("creating a logical device on " + pd.name).c_str());
    vkGetDeviceQueue(device_, family_, 0, &queue_);
    if (caps_.push_descriptors)
        push_descriptor_set = reinterpret_cast<PFN_vkCmdPushDescriptorSetKHR>(vkGetDeviceProcAddr(device_, "vkCmdPushDescriptorSetKHR"));
    if (caps_.push_descriptors && !push_descriptor_set) caps_.push_descriptors = false;
    if (caps_.host_import)
        host_pointer_properties = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
            vkGetDeviceProcAddr(device_, "vkGetMemoryHostPointerPropertiesEXT"));
    if (caps_.host_import && !host_pointer_properties) caps_.host_import = false;
}

Device::~Device() {
    if (device_) {
        vkDeviceWaitIdle(device_);
        vkDestroyDevice(device_, nullptr);
    }
}

}  // namespace halo::vk
