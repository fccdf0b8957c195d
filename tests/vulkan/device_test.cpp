// Device selection and the sentences for what can go wrong before any work: a bad index or name, no driver at all,
// a missing validation layer; the probe that `engine backends` prints; and the fallback paths (no subgroup
// operations, no push descriptors) giving the same logits as the fast ones.
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/plugin_loader.h"
#include "tests/support/plugins.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

std::vector<float> golden_prompt_logits(Backend& b) {
    ModelOptions o;
    o.max_context = 128;
    o.page_size = 16;
    Model m(b, golden_dir() + "/tiny", o);
    std::ifstream f(golden_dir() + "/tiny/prompt.json");
    const auto ids = nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
    Sequence s;
    m.begin_sequence(s);
    return m.prefill(s, ids, true);
}

}  // namespace

TEST(VulkanDevice, BadIndexOrNameListsTheDevices) {
    BackendOptions o;
    o.device_index = 99;
    const std::string by_index = error_of([&] { make_vulkan(o); });
    EXPECT_NE(by_index.find("device index 99 does not exist"), std::string::npos) << by_index;
    EXPECT_NE(by_index.find("heaps:"), std::string::npos) << by_index;
    o.device_index = -1;
    o.device_name = "no such gpu";
    const std::string by_name = error_of([&] { make_vulkan(o); });
    EXPECT_NE(by_name.find("no device name contains 'no such gpu'"), std::string::npos) << by_name;
}

TEST(VulkanDevice, ChoosesByIndexAndName) {
    auto first = make_vulkan();
    BackendOptions o;
    o.device_index = 0;
    EXPECT_NO_THROW(make_vulkan(o));
    o.device_index = -1;
    o.device_name = first->vk_device().physical().name.substr(0, 4);
    EXPECT_NO_THROW(make_vulkan(o));
}

TEST(VulkanDevice, ProbeShowsHeapsAndWhetherIntegrated) {
    bool found = false;
    for (const PluginReport& r : discover_plugins())
        if (r.name == "vulkan") {
            found = true;
            ASSERT_TRUE(r.usable) << r.reason;
            ASSERT_FALSE(r.probe.devices.empty());
            for (const std::string& d : r.probe.devices) {
                EXPECT_NE(d.find("heaps:"), std::string::npos) << d;
                EXPECT_TRUE(d.find("gpu") != std::string::npos || d.find("cpu") != std::string::npos) << d;
            }
        }
    EXPECT_TRUE(found) << "libhalo_vulkan.so was not found beside the test binaries";
}

TEST(VulkanDevice, NoDriverIsASentence) {
    ScopedEnv env({{"VK_ICD_FILENAMES", "/nonexistent/no_icd.json"}, {"VK_DRIVER_FILES", "/nonexistent/no_icd.json"}});
    const std::string e = error_of([] { make_vulkan(); });
    EXPECT_TRUE(e.find("no Vulkan driver is installed") != std::string::npos || e.find("reports no devices") != std::string::npos)
        << e;
}

TEST(VulkanDevice, MissingValidationLayerIsASentence) {
    ScopedEnv env({{"VK_LAYER_PATH", "/nonexistent"}, {"VK_ADD_LAYER_PATH", ""}, {"XDG_DATA_DIRS", "/nonexistent"},
                   {"XDG_DATA_HOME", "/nonexistent"}});
    BackendOptions o;
    o.validation = true;
    const std::string e = error_of([&] { make_vulkan(o); });
    EXPECT_NE(e.find("needs the Khronos validation layer"), std::string::npos) << e;
}

TEST(VulkanDevice, FallbackPathsGiveTheSameLogits) {
    std::vector<float> fast, slow;
    {
        auto b = make_vulkan();
        fast = golden_prompt_logits(*b);
    }
    {
        ScopedEnv env({{"HALO_VULKAN_NO_SUBGROUP", "1"}, {"HALO_VULKAN_NO_PUSH_DESCRIPTORS", "1"}});
        auto b = make_vulkan();
        EXPECT_FALSE(b->vk_device().caps().subgroup_ops);
        EXPECT_FALSE(b->vk_device().caps().push_descriptors);
        slow = golden_prompt_logits(*b);
    }
    ASSERT_EQ(fast.size(), slow.size());
    float m = 0;
    for (size_t i = 0; i < fast.size(); ++i) m = std::max(m, std::fabs(fast[i] - slow[i]));
    EXPECT_LE(m, 1e-5f) << "only the reduction order differs";
}

}  // namespace halo::test
