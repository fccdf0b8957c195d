#include "tests/support/plugins.h"

#include <cstdlib>

namespace halo::test {

const std::map<std::string, std::string>& plugins_without_ops() {
    static const std::map<std::string, std::string> list = {
        {"skeleton", "the template for new backends: every op answers 'not supported'"},
    };
    return list;
}

std::vector<std::string> plugins_under_test() {
    std::vector<std::string> names;
    for (const std::string& name : conformance_plugins())
        if (!plugins_without_ops().count(name)) names.push_back(name);
    return names;
}

std::vector<std::string> conformance_plugins() {
    std::vector<std::string> names;
    for (const PluginReport& r : discover_plugins())
        if (r.usable) names.push_back(r.name);
    return names;
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
