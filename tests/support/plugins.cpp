#include "tests/support/plugins.h"

#include <cstdlib>
#include <filesystem>

namespace halo::test {

const std::map<std::string, std::string>& plugins_without_ops() {
    static const std::map<std::string, std::string> list = {
        {"skeleton", "the template for new backends: every op answers 'not supported'"},
    };
    return list;
}

namespace {

// HALO_TEST_SKIP_PLUGINS: comma-separated plugins the suites leave out this run (the sanitizer step runs the
// emulated HIP plugin through the conformance suite only: the emulator is 10x slower under the sanitizers).
bool skipped(const std::string& name) {
    const char* env = std::getenv("HALO_TEST_SKIP_PLUGINS");
    if (!env) return false;
    const std::string list = std::string(",") + env + ",";
    return list.find("," + name + ",") != std::string::npos;
}

}  // namespace

std::vector<std::string> plugins_under_test() {
    std::vector<std::string> names;
    for (const PluginReport& r : discover_plugins())
        if (r.usable && !plugins_without_ops().count(r.name) && !skipped(r.name)) names.push_back(r.name);
    return names;
}

std::vector<std::string> conformance_plugins() {
    std::vector<std::string> names;
    for (const PluginReport& r : discover_plugins())
        if (!skipped(r.name)) names.push_back(r.name);
    return names;
}

std::string unusable_reason(const std::string& name) {
    for (const PluginReport& r : discover_plugins())
        if (r.name == name) return r.usable ? "" : r.reason;
    return "libhalo_" + name + ".so was not found beside the test binaries";
}

bool needs_absent_gpu(const PluginReport& r) {
    std::error_code ec;
    return r.name == "hip" && !std::filesystem::exists("/dev/kfd", ec) && !std::filesystem::exists("/dev/nvidia0", ec);
}

std::unique_ptr<LoadedBackend> load_plugin(const std::string& name, int threads) {
    ops::BackendOptions o;
    o.threads = threads;
    return load_backend(name, o);
}

std::string golden_dir() {
    if (const char* env = std::getenv("HALO_GOLDEN_DIR"); env && *env) return env;
    return HALO_GOLDEN_DIR_DEFAULT;
}

}  // namespace halo::test
