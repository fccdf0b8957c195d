#include "core/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

namespace halo {

namespace fs = std::filesystem;

struct LoadedBackend::Library {
    boost::dll::shared_library lib;
};

LoadedBackend::~LoadedBackend() {
    delete backend_;  // before the library (and its code) goes away
}

namespace {

bool is_plugin_file(const fs::path& p) {
    const std::string f = p.filename().string();
    return f.rfind("libhalo_", 0) == 0 && p.extension() == ".so";
}

// A directory the user named (`source` says how) must exist and hold at least one plugin: otherwise the user's
// intent would be silently dropped and the plugins beside the executable used instead.
void check_named_dir(const fs::path& dir, const std::string& source) {
    auto fail = [&](const std::string& what, const std::string& advice) {
        throw PluginError("plugin directory " + dir.string() + " " + what + " (given by " + source + "); " + advice);
    };
    const std::string give = "give the folder that holds the libhalo_<name>.so plugins";
    std::error_code ec;
    if (!fs::exists(dir, ec)) fail("does not exist", give);
    if (!fs::is_directory(dir, ec)) fail("is not a directory", give);
    fs::directory_iterator it(dir, ec);
    if (ec) fail("cannot be read: " + ec.message(), "check its permissions");
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) fail("cannot be read: " + ec.message(), "check its permissions");
        if (is_plugin_file(it->path())) return;
    }
    fail("has no plugins in it (no libhalo_<name>.so files)", "give the folder they were built into, such as build/bin");
}

}  // namespace

std::vector<fs::path> plugin_search_dirs(const std::string& option) {
    std::vector<fs::path> dirs;
    if (!option.empty()) {
        check_named_dir(option, "--plugin-dir");
        dirs.emplace_back(option);
    }
    if (const char* env = std::getenv("HALO_PLUGIN_DIR"); env && *env) {
        check_named_dir(env, "HALO_PLUGIN_DIR");
        dirs.emplace_back(env);
    }
    boost::dll::fs::error_code ec;
    const auto exe = boost::dll::program_location(ec);
    if (!ec) dirs.push_back(fs::path(exe.parent_path().string()));
    return dirs;
}

namespace {

std::string file_for(const std::string& name) { return "libhalo_" + name + ".so"; }


struct Opened {
    boost::dll::shared_library lib;
};

Opened open_checked(const fs::path& path, const std::string& name) {
    Opened o;
    boost::dll::fs::error_code ec;
    o.lib.load(boost::dll::fs::path(path.string()), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        // Boost reports only an errno; the dynamic loader's own sentence says which library or symbol is missing.
        std::string reason = ec.message();
        if (void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
            ::dlclose(h);
        } else if (const char* why = ::dlerror()) {
            reason = why;
        }
        throw PluginError("plugin '" + name + "' at " + path.string() +
                          " cannot be loaded (corrupt, built for another system, or missing a library it needs: " +
                          reason + "); rebuild it or remove the file");
    }
    for (const char* sym : {HALO_PLUGIN_ABI_SYMBOL, HALO_PLUGIN_PROBE_SYMBOL, HALO_PLUGIN_CREATE_SYMBOL})
        if (!o.lib.has(sym))
            throw PluginError("plugin '" + name + "' at " + path.string() + " does not export " + sym +
                              ", so it is not a Halo plugin; remove the file or rebuild it");
    const uint32_t abi = o.lib.get<ops::PluginAbiFn>(HALO_PLUGIN_ABI_SYMBOL)();
    if (abi != ops::kAbiVersion)
        throw PluginError("plugin '" + name + "' at " + path.string() + " was built for plugin ABI version " +
                          std::to_string(abi) + " but this engine uses version " + std::to_string(ops::kAbiVersion) +
                          "; rebuild the plugin together with the engine");
    return o;
}

}  // namespace

std::unique_ptr<LoadedBackend> load_backend(const std::string& name, const ops::BackendOptions& options,
                                            const std::string& plugin_dir_option) {
    const auto dirs = plugin_search_dirs(plugin_dir_option);
    fs::path found;
    for (const auto& d : dirs)
        if (fs::exists(d / file_for(name))) {
            found = d / file_for(name);
            break;
        }
    if (found.empty()) {
        std::string where;
        for (const auto& d : dirs) where += (where.empty() ? "" : ", ") + d.string();
        throw PluginError("backend '" + name + "' is not available: no " + file_for(name) + " in " + where +
                          " (was it built? `engine backends` lists what was found; --plugin-dir adds a directory)");
    }
    Opened o = open_checked(found, name);
    ops::PluginProbe probe;
    o.lib.get<ops::PluginProbeFn>(HALO_PLUGIN_PROBE_SYMBOL)(&probe);
    if (!probe.unusable_reason.empty())
        throw PluginError("backend '" + name + "' cannot run here: " + probe.unusable_reason);
    std::string error;
    ops::Backend* backend = o.lib.get<ops::PluginCreateFn>(HALO_PLUGIN_CREATE_SYMBOL)(&options, &error);
    if (!backend)
        throw PluginError("backend '" + name + "' failed to start: " + (error.empty() ? "no reason given" : error));
    auto lb = std::unique_ptr<LoadedBackend>(new LoadedBackend());
    lb->library_ = std::make_shared<LoadedBackend::Library>();
    lb->library_->lib = std::move(o.lib);
    lb->backend_ = backend;
    lb->name_ = name;
    lb->path_ = found;
    return lb;
}

std::vector<PluginReport> discover_plugins(const std::string& plugin_dir_option) {
    std::vector<PluginReport> out;
    std::set<std::string> seen;
    for (const auto& dir : plugin_search_dirs(plugin_dir_option)) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (is_plugin_file(e.path())) files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& path : files) {
            std::string name = path.stem().string().substr(8);
            if (!seen.insert(name).second) continue;  // an earlier directory wins
            PluginReport r;
            r.name = name;
            r.path = path;
            try {
                Opened o = open_checked(path, name);
                o.lib.get<ops::PluginProbeFn>(HALO_PLUGIN_PROBE_SYMBOL)(&r.probe);
                r.usable = r.probe.unusable_reason.empty();
                r.reason = r.probe.unusable_reason;
            } catch (const std::exception& e) {
                r.usable = false;
                r.reason = e.what();
            }
            out.push_back(std::move(r));
        }
    }
    return out;
}

}  // namespace halo
