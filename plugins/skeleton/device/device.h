// The device a backend runs on. The skeleton has one: the host, with host memory and no compute. A real backend
// lists its devices here (hipGetDeviceCount, vkEnumeratePhysicalDevices), picks one by BackendOptions::device_index
// or device_name, and describes it in a DeviceInfo from what the device itself reports.
#pragma once

#include <string>
#include <vector>

#include "ops/backend.h"

namespace halo::skeleton {

struct Device {
    ops::DeviceInfo info;  // what `engine backends` prints and the memory plan reads
};

// One line per device this machine has, for PluginProbe::devices. Never throws.
std::vector<std::string> list_devices();

// The device the options choose. Throws ops::Error naming the option when it matches no device.
Device open_device(const ops::BackendOptions& options);

}  // namespace halo::skeleton
