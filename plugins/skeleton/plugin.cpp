// The symbols a plugin library exports (ops/backend.h): its ABI version, a probe that never throws, and create.
// Exceptions and error sentences cross the boundary as ops::Error (and OutOfMemory, Unsupported), whichever compiler
// built the plugin: tests/core/cross_compiler_plugin_test.cpp loads a clang build of this plugin into the GCC-built
// core and checks it.
#include <exception>
#include <string>

#include "plugins/skeleton/backend.h"

namespace {

// Which compiler built this library, for `engine backends`.
#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "gcc " __VERSION__;
#else
constexpr const char* kCompiler = "an unknown compiler";
#endif

}  // namespace

extern "C" {

HALO_VISIBLE uint32_t halo_plugin_abi_version() { return halo::ops::kAbiVersion; }

HALO_VISIBLE void halo_plugin_probe(halo::ops::PluginProbe* out) {
    out->plugin_name = "skeleton";
    out->version = std::string("halo skeleton plugin, built with ") + kCompiler;
    try {
        out->devices = halo::skeleton::list_devices();
        out->unusable_reason.clear();
    } catch (const std::exception& e) {
        out->unusable_reason = e.what();
    }
}

HALO_VISIBLE halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions* options, std::string* error) {
    try {
        return new halo::skeleton::SkeletonBackend(options ? *options : halo::ops::BackendOptions{});
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return nullptr;
    }
}

}  // extern "C"
