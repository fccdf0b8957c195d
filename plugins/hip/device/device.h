// The HIP devices of this machine and the one a backend runs on: what the runtime reports (hipGetDeviceProperties,
// hipMemGetInfo) and, on Linux, what the amdgpu driver reports for the same GPU in sysfs (the VRAM carve-out and
// the GTT pool), side by side, since on APUs the two disagree.
#pragma once

#include <string>
#include <vector>

#include "ops/backend.h"

namespace halo::hip {

// The placements every HIP device offers, by index into DeviceInfo::placements.
enum Placement : int32_t {
    kDevice = 0,   // hipMalloc: VRAM, the UMA carve-out on an APU
    kPinned = 1,   // hipHostMalloc (page-locked host memory the GPU reads in place); imports mmap'd weight files
                   // with hipHostRegister
    kManaged = 2,  // hipMallocManaged: pages migrate on demand (gfx1151 needs HSA_XNACK=1)
};

// What the amdgpu driver reports for a GPU (bytes; 0 where a file is missing).
struct SysfsMemory {
    std::string card;  // "/sys/class/drm/card1/device", empty when none matched
    uint64_t vram_total = 0, vram_used = 0, gtt_total = 0, gtt_used = 0;
};

struct Device {
    int index = 0;
    int warp_size = 32;
    std::string arch;  // gcnArchName ("gfx1151:xnack-"), or "sm_90" on NVIDIA
    ops::DeviceInfo info;
};

// One line per device, for PluginProbe::devices. Throws ops::Error "no HIP device (hipErrorNoDevice)" when the
// runtime finds none (the probe turns it into the plugin's unusable reason).
std::vector<std::string> list_devices();

// The device the options choose; throws ops::Error naming the option when it matches none.
Device open_device(const ops::BackendOptions& options);

// The sysfs memory files of the GPU at this PCI address (domain:bus:device), or of the only card that has them.
// drm_root is /sys/class/drm (a test passes a tree of its own).
SysfsMemory read_sysfs_memory(int pci_domain, int pci_bus, int pci_device,
                              const std::string& drm_root = "/sys/class/drm");

// Throws ops::Error "hip: <what> failed: <hipErrorName> (<string>)" unless e is hipSuccess.
void check(int e, const char* what);

}  // namespace halo::hip
