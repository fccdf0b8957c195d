// The plugin loader: a missing, corrupt, ABI-mismatched, symbol-less, device-less or failing plugin each gives one
// clear sentence naming the plugin and what to do. Fake plugins live in their own directory (FAKE_PLUGIN_DIR).
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
