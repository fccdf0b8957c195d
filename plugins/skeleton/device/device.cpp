#include "plugins/skeleton/device/device.h"

#include <fstream>

namespace halo::skeleton {

namespace {

constexpr const char* kDeviceName = "host memory (skeleton plugin: runs no ops)";

// Bytes of a /proc/meminfo field, or 0 when it cannot be read.
uint64_t meminfo_bytes(const std::string& key) {
    std::ifstream f("/proc/meminfo");
    std::string k, unit;
    uint64_t kb = 0;
    while (f >> k >> kb >> unit)
        if (k == key + ":") return kb * 1024;
    return 0;
}

}  // namespace

std::vector<std::string> list_devices() { return {kDeviceName}; }

Device open_device(const ops::BackendOptions& options) {
    if (options.device_index > 0)
        throw ops::Error("skeleton: device index " + std::to_string(options.device_index) +
                         " does not exist; the skeleton plugin has one device, index 0");
    if (!options.device_name.empty() && std::string(kDeviceName).find(options.device_name) == std::string::npos)
        throw ops::Error("skeleton: no device matches '" + options.device_name +
                         "'; the skeleton plugin's one device is '" + kDeviceName + "'");
    Device d;
    d.info.name = kDeviceName;
    d.info.kind = "cpu";
    d.info.unified_memory = true;
    ops::PlacementInfo host;
    host.name = "host";
    host.description = "process heap; imports host memory (mmap'd weight files) without a copy";
    host.capacity_bytes = meminfo_bytes("MemTotal");
    host.budget_bytes = meminfo_bytes("MemAvailable");
    host.host_visible = true;
    host.imports_host = true;
    host.pool = "system memory";
    d.info.placements = {host};
    for (std::string& p : d.info.default_placement) p = "host";
    d.info.notes = {"every op answers 'not supported': this plugin is the template for new backends "
                    "(plugins/skeleton/README.md)"};
    return d;
}

}  // namespace halo::skeleton
