#include "plugins/vulkan/device/instance.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "plugins/vulkan/device/check.h"

namespace halo::vk {

namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

std::string gb(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GB", double(bytes) / 1e9);
    return buf;
}

const char* kind_of(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

int preference(const PhysicalDevice& d) {
    if (d.compute_family == UINT32_MAX) return 0;
    if (d.kind == "discrete-gpu") return 5;
    if (d.kind == "integrated-gpu") return 4;
    if (d.kind == "virtual-gpu") return 3;
    if (d.kind == "other") return 2;
    return 1;  // cpu (lavapipe)
}

bool has_layer(const char* name) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, nullptr);
    std::vector<VkLayerProperties> layers(n);
    vkEnumerateInstanceLayerProperties(&n, layers.data());
    for (const auto& l : layers)
        if (std::strcmp(l.layerName, name) == 0) return true;
    return false;
}

bool has_instance_extension(const char* name, const char* layer = nullptr) {
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(layer, &n, nullptr);
    std::vector<VkExtensionProperties> ext(n);
    vkEnumerateInstanceExtensionProperties(layer, &n, ext.data());
    for (const auto& e : ext)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

}  // namespace

std::string PhysicalDevice::describe() const {
    std::string s = std::to_string(index) + ": " + name + " (" + kind + (unified_memory ? ", unified memory" : "") +
                    ", Vulkan " + std::to_string(VK_API_VERSION_MAJOR(properties.apiVersion)) + "." +
                    std::to_string(VK_API_VERSION_MINOR(properties.apiVersion));
    if (compute_family == UINT32_MAX) s += ", NO compute queue";
    s += "; heaps:";
    for (uint32_t h = 0; h < memory.memoryHeapCount; ++h)
        s += std::string(h ? "," : "") + " " + std::to_string(h) + " " +
             ((memory.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? "device-local " : "host ") +
             gb(memory.memoryHeaps[h].size);
    return s + ")";
}

Instance::Instance(bool validation) : validation_(validation) {
    if (validation && !has_layer(kValidationLayer))
        throw ops::Error(std::string("vulkan: validation mode needs the Khronos validation layer (") + kValidationLayer +
                         "), which is not installed; install it (Debian: vulkan-validationlayers, or the LunarG SDK) "
                         "or run without --validation");
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "halo";
    app.applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0);
    app.pEngineName = "halo";
    app.apiVersion = VK_API_VERSION_1_2;

    std::vector<const char*> layers, extensions;
    const bool debug_utils = validation && has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    const bool features = validation && has_instance_extension(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME, kValidationLayer);
    if (validation) layers.push_back(kValidationLayer);
    if (debug_utils) extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    if (features) extensions.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);

    VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    info.pApplicationInfo = &app;
    info.enabledLayerCount = uint32_t(layers.size());
    info.ppEnabledLayerNames = layers.data();
    info.enabledExtensionCount = uint32_t(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    // Synchronisation validation catches missing barriers between dispatches, the bug class this plugin is most
    // exposed to.
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT vf{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
    vf.enabledValidationFeatureCount = 1;
    vf.pEnabledValidationFeatures = enables;
    if (features) info.pNext = &vf;

    const VkResult r = vkCreateInstance(&info, nullptr, &instance_);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        throw ops::Error("vulkan: no Vulkan driver is installed (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER); install "
                         "one for your GPU (Debian: mesa-vulkan-drivers, which also provides the lavapipe CPU driver)");
    check(r, "creating the Vulkan instance (vkCreateInstance)");

    if (debug_utils) {
        auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
        VkDebugUtilsMessengerCreateInfoEXT m{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
        m.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
        m.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                        VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
        m.pfnUserCallback = &Instance::on_message;
        m.pUserData = this;
        if (create) check(create(instance_, &m, nullptr, &messenger_), "creating the validation message callback");
    }

    uint32_t n = 0;
    check(vkEnumeratePhysicalDevices(instance_, &n, nullptr), "listing Vulkan devices");
    std::vector<VkPhysicalDevice> handles(n);
    check(vkEnumeratePhysicalDevices(instance_, &n, handles.data()), "listing Vulkan devices");
    for (uint32_t i = 0; i < n; ++i) {
        PhysicalDevice d;
        d.handle = handles[i];
        d.index = int32_t(i);
        vkGetPhysicalDeviceProperties(d.handle, &d.properties);
        vkGetPhysicalDeviceMemoryProperties(d.handle, &d.memory);
        d.name = d.properties.deviceName;
        d.kind = kind_of(d.properties.deviceType);
        d.unified_memory = d.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                           d.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
        uint32_t nf = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &nf, nullptr);
        std::vector<VkQueueFamilyProperties> families(nf);
        vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &nf, families.data());
        // Prefer a family with compute but no graphics (an async compute queue), else any with compute.
        for (uint32_t f = 0; f < nf; ++f)
            if ((families[f].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(families[f].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
                d.compute_family = f;
                break;
            }
        if (d.compute_family == UINT32_MAX)
            for (uint32_t f = 0; f < nf; ++f)
                if (families[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                    d.compute_family = f;
                    break;
                }
        devices_.push_back(d);
    }
}

Instance::~Instance() {
    if (messenger_) {
        auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
        if (destroy) destroy(instance_, messenger_, nullptr);
    }
    if (instance_) vkDestroyInstance(instance_, nullptr);
}

const PhysicalDevice& Instance::choose(int32_t index, const std::string& name) const {
    if (devices_.empty())
        throw ops::Error("vulkan: the Vulkan driver reports no devices; check that a driver for your GPU is installed "
                         "(vulkaninfo --summary lists what the loader finds)");
    std::string list;
    for (const auto& d : devices_) list += (list.empty() ? "" : "; ") + d.describe();
    const PhysicalDevice* pick = nullptr;
    if (index >= 0) {
        if (index >= int32_t(devices_.size()))
            throw ops::Error("vulkan: device index " + std::to_string(index) + " does not exist; the devices are: " + list);
        pick = &devices_[size_t(index)];
    } else if (!name.empty()) {
        for (const auto& d : devices_)
            if (d.name.find(name) != std::string::npos) {
                pick = &d;
                break;
            }
        if (!pick) throw ops::Error("vulkan: no device name contains '" + name + "'; the devices are: " + list);
    } else {
        for (const auto& d : devices_)
            if (!pick || preference(d) > preference(*pick)) pick = &d;
    }
    if (pick->compute_family == UINT32_MAX)
        throw ops::Error("vulkan: device " + pick->describe() + " has no compute queue, so it cannot run Halo; choose "
                         "another with --device (the devices are: " + list + ")");
    if (pick->properties.apiVersion < VK_API_VERSION_1_2)
        throw ops::Error("vulkan: device " + pick->describe() + " supports only Vulkan " +
                         std::to_string(VK_API_VERSION_MAJOR(pick->properties.apiVersion)) + "." +
                         std::to_string(VK_API_VERSION_MINOR(pick->properties.apiVersion)) +
                         "; the plugin needs Vulkan 1.2 (update the driver)");
    return *pick;
}

std::string Instance::first_validation_error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_error_;
}

VKAPI_ATTR VkBool32 VKAPI_CALL Instance::on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                    VkDebugUtilsMessageTypeFlagsEXT, const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                    void* user) {
    auto* self = static_cast<Instance*>(user);
    const bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    const char* text = data && data->pMessage ? data->pMessage : "(no message)";
    std::fprintf(stderr, "vulkan validation %s: %s\n", error ? "error" : "warning", text);
    if (error) {
        std::lock_guard<std::mutex> lock(self->mutex_);
        if (self->errors_.fetch_add(1) == 0) self->first_error_ = text;
    }
    return VK_FALSE;
}

}  // namespace halo::vk
