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

// The plugins the model tests run on: the usable ones, less plugins_without_ops().
std::vector<std::string> plugins_under_test();
// The plugins the op conformance suite runs on: every usable plugin.
std::vector<std::string> conformance_plugins();
std::unique_ptr<LoadedBackend> load_plugin(const std::string& name, int threads = 2);
std::string golden_dir();  // HALO_GOLDEN_DIR (env overrides the build-time path)

}  // namespace halo::test
