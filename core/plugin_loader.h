// Finds backend plugins (shared libraries named libhalo_<name>.so) and loads them with Boost.DLL.
// Search order: the --plugin-dir option, $HALO_PLUGIN_DIR, then the directory of the running executable.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/backend.h"

namespace halo {

class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A loaded plugin library and a backend created from it. Destroys the backend before unloading the library.
class LoadedBackend {
public:
    ~LoadedBackend();
    ops::Backend& backend() { return *backend_; }
    const std::string& name() const { return name_; }
    const std::filesystem::path& path() const { return path_; }

private:
    friend std::unique_ptr<LoadedBackend> load_backend(const std::string&, const ops::BackendOptions&,
                                                       const std::string&);
    struct Library;
    std::shared_ptr<Library> library_;
    ops::Backend* backend_ = nullptr;
    std::string name_;
    std::filesystem::path path_;
};

// What `engine backends` prints for one plugin file.
struct PluginReport {
    std::string name;                 // "cpu"
    std::filesystem::path path;
    bool usable = false;
    std::string reason;               // why not, when unusable
    ops::PluginProbe probe;           // when the library loaded
};

// The directories searched, in order. Throws PluginError (naming the directory) when --plugin-dir or
// $HALO_PLUGIN_DIR names a directory that does not exist, is not a directory, or has no libhalo_*.so in it.
std::vector<std::filesystem::path> plugin_search_dirs(const std::string& plugin_dir_option);

// Loads libhalo_<name>.so and creates its backend. Throws PluginError with one sentence: not found (and where it
// looked), not loadable (corrupt or missing symbols), ABI mismatch, or no usable device; or a bad plugin directory
// (see plugin_search_dirs).
std::unique_ptr<LoadedBackend> load_backend(const std::string& name, const ops::BackendOptions& options,
                                            const std::string& plugin_dir_option = "");

// Every plugin found in the search directories, loaded and probed (but no backend created). Throws PluginError on a
// bad plugin directory (see plugin_search_dirs).
std::vector<PluginReport> discover_plugins(const std::string& plugin_dir_option = "");

}  // namespace halo
