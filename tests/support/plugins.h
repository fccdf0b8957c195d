// The plugins the tests run against: every libhalo_<name>.so found beside the test binaries. The CPU plugin must
// always be there; other plugins are tested when they load. Nothing is skipped silently: a plugin that is built but
// cannot run fails PluginInventory unless HALO_TEST_ALLOW_UNUSABLE names it (e.g. "vulkan" on a machine without
// any Vulkan driver).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/plugin_loader.h"

namespace halo::test {

// Plugins that load but run no model because they implement no op (the skeleton, the template for new backends),
// name -> why. The op conformance suite runs them, reporting every case as not run with the plugin's sentence; the
// model tests leave them out. PluginInventory checks that each one found really answers every op "not supported".
const std::map<std::string, std::string>& plugins_without_ops();

// Both lists leave out the plugins named in HALO_TEST_SKIP_PLUGINS (comma-separated).
// The plugins the model tests run on: the usable ones, less plugins_without_ops().
std::vector<std::string> plugins_under_test();
// The plugins the op conformance suite runs on: every plugin found, usable or not. The cases of one that cannot
// start here (the HIP plugin on a machine without a GPU) are reported as not run, with its reason.
std::vector<std::string> conformance_plugins();
// Why a plugin found beside the tests cannot start here (its probe's sentence), or "" when it can.
std::string unusable_reason(const std::string& name);
// A plugin that needs a GPU this machine does not have: the hip plugin (libhalo_hip.so, built by hipcc) when no
// /dev/kfd (ROCm) or /dev/nvidia0 exists. Its tests report not run instead of failing.
bool needs_absent_gpu(const PluginReport& r);
std::unique_ptr<LoadedBackend> load_plugin(const std::string& name, int threads = 2);
std::string golden_dir();  // HALO_GOLDEN_DIR (env overrides the build-time path)

}  // namespace halo::test
