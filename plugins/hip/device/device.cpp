#include "plugins/hip/device/device.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "plugins/hip/runtime/hip.h"

namespace halo::hip {

namespace {

std::string error_text(hipError_t e) { return std::string(hipGetErrorName(e)) + " (" + hipGetErrorString(e) + ")"; }

uint64_t read_number(const std::filesystem::path& p) {
    std::ifstream f(p);
    uint64_t v = 0;
    f >> v;
    return f ? v : 0;
}

std::string gib(uint64_t bytes) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f GiB", double(bytes) / double(uint64_t(1) << 30));
    return s;
}

std::string arch_of(const hipDeviceProp_t& p) {
#if defined(HALO_HIP_ON_CUDA)
    return "sm_" + std::to_string(p.major) + std::to_string(p.minor);
#else
    return p.gcnArchName;
#endif
}

int device_count() {
    int n = 0;
    const hipError_t e = hipGetDeviceCount(&n);
    if (e == hipErrorNoDevice || (e == hipSuccess && n == 0)) throw ops::Error("no HIP device (hipErrorNoDevice)");
    if (e != hipSuccess) throw ops::Error("no HIP device: hipGetDeviceCount failed: " + error_text(e));
    return n;
}

}  // namespace

void check(int e, const char* what) {
    if (e != hipSuccess)
        throw ops::Error(std::string("hip: ") + what + " failed: " + error_text(hipError_t(e)));
}

SysfsMemory read_sysfs_memory(int pci_domain, int pci_bus, int pci_device, const std::string& drm_root) {
    namespace fs = std::filesystem;
    SysfsMemory out;
    char want[32];
    std::snprintf(want, sizeof want, "%04x:%02x:%02x.", pci_domain, pci_bus, pci_device);
    std::error_code ec;
    std::vector<fs::path> cards;
    for (const auto& entry : fs::directory_iterator(drm_root, ec)) {
        const fs::path dev = entry.path() / "device";
        if (entry.path().filename().string().rfind("card", 0) != 0 || !fs::exists(dev / "mem_info_vram_total", ec))
            continue;
        cards.push_back(dev);
        const std::string slot = fs::canonical(dev, ec).filename().string();
        if (slot.rfind(want, 0) == 0) {
            cards = {dev};
            break;
        }
    }
    if (cards.size() != 1) return out;  // none, or several and none matched: do not guess
    out.card = cards[0].string();
    out.vram_total = read_number(cards[0] / "mem_info_vram_total");
    out.vram_used = read_number(cards[0] / "mem_info_vram_used");
    out.gtt_total = read_number(cards[0] / "mem_info_gtt_total");
    out.gtt_used = read_number(cards[0] / "mem_info_gtt_used");
    return out;
}

std::vector<std::string> list_devices() {
    const int n = device_count();
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        hipDeviceProp_t p;
        check(hipGetDeviceProperties(&p, i), "hipGetDeviceProperties");
        out.push_back(std::string(p.name) + " (" + arch_of(p) + ", " + gib(p.totalGlobalMem) + ", wave" +
                      std::to_string(p.warpSize) + ")");
    }
    return out;
}

Device open_device(const ops::BackendOptions& options) {
    const int n = device_count();
    int index = options.device_index < 0 ? 0 : options.device_index;
    if (index >= n)
        throw ops::Error("hip: device index " + std::to_string(index) + " does not exist; this machine has " +
                         std::to_string(n) + " HIP device" + (n == 1 ? "" : "s") + " (`engine backends` lists them)");
    if (!options.device_name.empty()) {
        index = -1;
        for (int i = 0; i < n && index < 0; ++i) {
            hipDeviceProp_t p;
            check(hipGetDeviceProperties(&p, i), "hipGetDeviceProperties");
            if (std::string(p.name).find(options.device_name) != std::string::npos) index = i;
        }
        if (index < 0) throw ops::Error("hip: no device matches '" + options.device_name + "' (`engine backends` lists them)");
    }
    check(hipSetDevice(index), "hipSetDevice");
    hipDeviceProp_t p;
    check(hipGetDeviceProperties(&p, index), "hipGetDeviceProperties");
    size_t free_bytes = 0, total_bytes = 0;
    check(hipMemGetInfo(&free_bytes, &total_bytes), "hipMemGetInfo");

    Device d;
    d.index = index;
    d.warp_size = p.warpSize;
    d.arch = arch_of(p);
    ops::DeviceInfo& info = d.info;
    info.name = p.name;
    info.kind = p.integrated ? "integrated-gpu" : "discrete-gpu";
#if defined(HALO_HIP_EMULATOR)
    info.kind = "cpu";
#endif
    info.unified_memory = p.integrated != 0;

    const SysfsMemory sys = read_sysfs_memory(p.pciDomainID, p.pciBusID, p.pciDeviceID);
    uint64_t host_total = 0, host_free = 0;
    {
        std::ifstream f("/proc/meminfo");
        std::string k, unit;
        uint64_t kb = 0;
        while (f >> k >> kb >> unit) {
            if (k == "MemTotal:") host_total = kb * 1024;
            if (k == "MemAvailable:") host_free = kb * 1024;
        }
    }

    ops::PlacementInfo dev;
    dev.name = "device";
    dev.description = p.integrated ? "hipMalloc: the VRAM carve-out the firmware reserves for the GPU"
                                   : "hipMalloc: the GPU's own memory";
    dev.capacity_bytes = total_bytes;
    dev.budget_bytes = free_bytes;
    dev.pool = "hip device memory";
    ops::PlacementInfo pinned;
    pinned.name = "pinned";
    pinned.description = "hipHostMalloc: page-locked system memory the GPU reads in place; imports mmap'd weight "
                         "files with hipHostRegister (zero-copy on an APU)";
    pinned.capacity_bytes = host_total;
    pinned.budget_bytes = host_free;
    pinned.host_visible = true;
    pinned.imports_host = true;
    pinned.pool = "system memory";
    ops::PlacementInfo managed;
    managed.name = "managed";
    managed.description = "hipMallocManaged: pages move between host and device on demand";
    managed.capacity_bytes = host_total;
    managed.budget_bytes = host_free;
    managed.host_visible = true;
    managed.pool = "system memory";
    info.placements = {dev, pinned, managed};
    for (std::string& u : info.default_placement) u = "device";

    info.notes.push_back("runtime: " + std::string(p.name) + ", " + d.arch + ", wave" + std::to_string(p.warpSize) +
                         "; hipMemGetInfo: " + gib(free_bytes) + " free of " + gib(total_bytes));
    if (!sys.card.empty())
        info.notes.push_back("amdgpu sysfs (" + sys.card + "): VRAM carve-out " + gib(sys.vram_total) + " (" +
                             gib(sys.vram_used) + " used), GTT " + gib(sys.gtt_total) + " (" + gib(sys.gtt_used) +
                             " used); on an APU hipMemGetInfo may count either");
#if !defined(HALO_HIP_EMULATOR)
    else if (p.integrated)
        info.notes.push_back("amdgpu sysfs: no mem_info_vram_total found for this GPU");
#endif
    const char* xnack = std::getenv("HSA_XNACK");
    if (d.arch.rfind("gfx1151", 0) == 0 && !(xnack && std::string(xnack) == "1"))
        info.notes.push_back("the managed placement needs HSA_XNACK=1 on gfx1151 (page faults are off without it)");
#if defined(HALO_HIP_EMULATOR)
    info.notes.push_back("the HIP host emulator: the plugin's kernels run on the CPU, one block at a time, to test "
                         "them (HALO_HIPEMU_WAVE=64 for wave64); not for speed");
#endif
    return d;
}

}  // namespace halo::hip
