// The exported symbols of the Vulkan plugin: ABI version, probe (devices with their heaps and whether they are
// integrated, or why none is usable) and the backend factory.
#include <memory>
#include <string>

#include "plugins/vulkan/backend.h"

extern "C" {

__attribute__((visibility("default"))) uint32_t halo_plugin_abi_version() { return halo::ops::kAbiVersion; }

__attribute__((visibility("default"))) void halo_plugin_probe(halo::ops::PluginProbe* out) {
    out->plugin_name = "vulkan";
    out->version = "halo vulkan plugin (SPIR-V for Vulkan 1.2)";
    out->devices.clear();
    out->unusable_reason.clear();
    try {
        halo::vk::Instance instance(false);
        bool usable = false;
        for (const auto& d : instance.devices()) {
            out->devices.push_back(d.describe());
            usable = usable || (d.compute_family != UINT32_MAX && d.properties.apiVersion >= VK_API_VERSION_1_2);
        }
        if (instance.devices().empty())
            out->unusable_reason = "the Vulkan loader found no device (vulkaninfo --summary shows what it sees; install a "
                                   "driver, e.g. mesa-vulkan-drivers)";
        else if (!usable)
            out->unusable_reason = "no Vulkan device has a compute queue and Vulkan 1.2";
    } catch (const std::exception& e) {
        out->unusable_reason = e.what();
    }
}

__attribute__((visibility("default"))) halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions* options,
                                                                              std::string* error) {
    try {
        return new halo::vk::VulkanBackend(options ? *options : halo::ops::BackendOptions{});
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return nullptr;
    }
}

}  // extern "C"
