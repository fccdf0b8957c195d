// The plugin loader: a missing, corrupt, ABI-mismatched, symbol-less, device-less or failing plugin each gives one
// clear sentence naming the plugin and what to do, and so does a plugin directory that does not exist or holds no
// plugin. Fake plugins live in their own directory (FAKE_PLUGIN_DIR).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/plugin_loader.h"

namespace halo::test {

namespace {

std::string load_error(const std::string& name, const std::string& dir = FAKE_PLUGIN_DIR) {
    try {
        load_backend(name, {}, dir);
        return "";
    } catch (const PluginError& e) {
        return e.what();
    }
}

void expect_words(const std::string& e, const std::vector<std::string>& words) {
    ASSERT_FALSE(e.empty());
    for (const auto& w : words) EXPECT_NE(e.find(w), std::string::npos) << "'" << e << "' lacks '" << w << "'";
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 0) << "one sentence, one line: " << e;
}

TEST(PluginLoader, Missing) { expect_words(load_error("nosuchbackend"), {"nosuchbackend", "not available", "libhalo_nosuchbackend.so"}); }

TEST(PluginLoader, Corrupt) {
    const auto dir = std::filesystem::temp_directory_path() / "halo_corrupt_plugin";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "libhalo_corrupt.so") << "this is not an ELF file";
    expect_words(load_error("corrupt", dir.string()), {"corrupt", "cannot be loaded", "rebuild"});
    std::filesystem::remove_all(dir);
}

TEST(PluginLoader, AbiMismatch) { expect_words(load_error("fake_abi"), {"fake_abi", "ABI version", "rebuild"}); }

TEST(PluginLoader, NoDevice) { expect_words(load_error("fake_nodevice"), {"fake_nodevice", "cannot run here", "no fake device"}); }

TEST(PluginLoader, CreateFails) { expect_words(load_error("fake_createfails"), {"fake_createfails", "failed to start", "refused"}); }

TEST(PluginLoader, MissingSymbol) { expect_words(load_error("fake_nosymbol"), {"fake_nosymbol", "halo_plugin_create", "not a Halo plugin"}); }

// A plugin directory the user names is never dropped silently in favour of the plugins beside the executable.
TEST(PluginLoader, MissingPluginDirectoryIsAnError) {
    const std::string dir = "/nonexistent/halo_plugins";
    expect_words(load_error("cpu", dir), {"plugin directory " + dir + " does not exist", "--plugin-dir"});
    EXPECT_THROW(discover_plugins(dir), PluginError);
}

TEST(PluginLoader, PluginDirectoryThatIsAFileIsAnError) {
    const auto file = std::filesystem::temp_directory_path() / "halo_plugin_dir_file";
    std::ofstream(file) << "not a directory";
    expect_words(load_error("cpu", file.string()), {"plugin directory " + file.string(), "is not a directory"});
    std::filesystem::remove(file);
}

TEST(PluginLoader, PluginDirectoryWithoutPluginsIsAnError) {
    const auto dir = std::filesystem::temp_directory_path() / "halo_empty_plugin_dir";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "libother.so") << "";  // not named libhalo_<name>.so
    expect_words(load_error("cpu", dir.string()), {"plugin directory " + dir.string(), "has no plugins in it"});
    EXPECT_THROW(discover_plugins(dir.string()), PluginError);
    std::filesystem::remove_all(dir);
}

TEST(PluginLoader, MissingPluginDirectoryFromTheEnvironmentIsAnError) {
    const char* old = std::getenv("HALO_PLUGIN_DIR");
    const std::string saved = old ? old : "";
    ::setenv("HALO_PLUGIN_DIR", "/nonexistent/halo_env_plugins", 1);
    const std::string e = load_error("cpu", "");
    if (old)
        ::setenv("HALO_PLUGIN_DIR", saved.c_str(), 1);
    else
        ::unsetenv("HALO_PLUGIN_DIR");
    expect_words(e, {"plugin directory /nonexistent/halo_env_plugins does not exist", "HALO_PLUGIN_DIR"});
}

TEST(PluginLoader, DiscoveryReportsEveryFakePlugin) {
    // Wrong ABI, no device and a missing symbol are visible without creating a backend; a failing create()
    // only shows when the backend starts.
    int seen = 0;
    for (const PluginReport& r : discover_plugins(FAKE_PLUGIN_DIR))
        if (r.name.rfind("fake_", 0) == 0) {
            ++seen;
            EXPECT_EQ(r.usable, r.name == "fake_createfails") << r.name;
            if (!r.usable) {
                EXPECT_FALSE(r.reason.empty()) << r.name;
            }
        }
    EXPECT_EQ(seen, 4);
}

}  // namespace

}  // namespace halo::test
