// The plugins the tests run against: every libhalo_<name>.so found beside the test binaries. The CPU plugin must
// always be there; other plugins are tested when they load. Nothing is skipped silently: a plugin that is built but
// cannot run fails PluginInventory unless HALO_TEST_ALLOW_UNUSABLE names it (e.g. "vulkan" on a machine without
// any Vulkan driver).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/plugin_loader.h"

namespace halo::test {

std::vector<std::string> plugins_under_test();
std::unique_ptr<LoadedBackend> load_plugin(const std::string& name, int threads = 2);
std::string golden_dir();  // HALO_GOLDEN_DIR (env overrides the build-time path)

}  // namespace halo::test
