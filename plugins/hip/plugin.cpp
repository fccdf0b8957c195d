// The symbols the HIP plugin exports (ops/backend.h). Built as libhalo_hip.so by hipcc for AMD GPUs, as
// libhalo_hipemu.so by the host compiler with the kernels on the HIP host emulator (runtime/emulator.h).
#include <exception>
#include <string>

#include "plugins/hip/backend.h"

namespace {

#if defined(HALO_HIP_EMULATOR)
constexpr const char* kName = "hipemu";
constexpr const char* kWhat = "halo HIP plugin on the host emulator (kernels run on the CPU, for testing)";
#elif defined(HALO_HIP_ON_CUDA)
constexpr const char* kName = "hip";
constexpr const char* kWhat = "halo HIP plugin built for CUDA";
#else
constexpr const char* kName = "hip";
constexpr const char* kWhat = "halo HIP plugin";
#endif

#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "gcc " __VERSION__;
#else
constexpr const char* kCompiler = "an unknown compiler";
#endif

#ifndef HALO_HIP_ARCHS_BUILT
#define HALO_HIP_ARCHS_BUILT "host"
#endif

}  // namespace

extern "C" {

HALO_VISIBLE uint32_t halo_plugin_abi_version() { return halo::ops::kAbiVersion; }

HALO_VISIBLE void halo_plugin_probe(halo::ops::PluginProbe* out) {
    out->plugin_name = kName;
    out->version = std::string(kWhat) + ", built with " + kCompiler + " for " + HALO_HIP_ARCHS_BUILT;
    try {
        out->devices = halo::hip::list_devices();
        out->unusable_reason.clear();
    } catch (const std::exception& e) {
        out->devices.clear();
        out->unusable_reason = e.what();
    }
}

HALO_VISIBLE halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions* options, std::string* error) {
    try {
        return new halo::hip::HipBackend(options ? *options : halo::ops::BackendOptions{});
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return nullptr;
    }
}

}  // extern "C"
