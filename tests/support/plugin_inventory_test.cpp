// Every plugin that was built must load and find a device, or be named in HALO_TEST_ALLOW_UNUSABLE.
#include <algorithm>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/each_op.h"
#include "tests/support/plugins.h"

namespace halo::test {

TEST(PluginInventory, CpuPluginIsPresentAndUsable) {
    bool found = false;
    for (const PluginReport& r : discover_plugins())
        if (r.name == "cpu") {
            found = true;
            EXPECT_TRUE(r.usable) << r.reason;
        }
    EXPECT_TRUE(found) << "libhalo_cpu.so was not found beside the test binaries";
}

TEST(PluginInventory, EveryBuiltPluginIsUsableOrExplicitlyExcused) {
    const char* env = std::getenv("HALO_TEST_ALLOW_UNUSABLE");
    const std::string allowed = env ? env : "";
    for (const PluginReport& r : discover_plugins()) {
        if (r.usable) continue;
        if (needs_absent_gpu(r)) {
            // Its conformance cases report not run with this reason (Conformance::SetUp).
            EXPECT_EQ(r.reason.rfind("no HIP device", 0), 0u) << "the hip plugin on a machine without a GPU should "
                                                                 "say 'no HIP device (...)', not: " << r.reason;
            std::printf("plugin %s has no device here (no /dev/kfd or /dev/nvidia0): %s\n", r.name.c_str(),
                        r.reason.c_str());
            continue;
        }
        if (allowed.find(r.name) != std::string::npos) {
            std::printf("plugin %s is not usable here and is excused by HALO_TEST_ALLOW_UNUSABLE: %s\n", r.name.c_str(), r.reason.c_str());
            continue;
        }
        ADD_FAILURE() << "plugin " << r.name << " was built but cannot run, so its tests would be skipped: " << r.reason;
    }
}

// A plugin left out of the model tests for implementing no op must really implement none (else the list would hide
// a plugin's failures), must still load (the conformance suite runs it) and must be in the conformance list only.
TEST(PluginInventory, PluginsWithoutOpsAnswerEveryOpUnsupportedAndOnlyRunConformance) {
    bool skeleton = false;
    const auto model_plugins = plugins_under_test(), conformance = conformance_plugins();
    for (const PluginReport& r : discover_plugins()) {
        const auto listed = plugins_without_ops().find(r.name);
        if (listed == plugins_without_ops().end()) continue;
        skeleton = skeleton || r.name == "skeleton";
        ASSERT_TRUE(r.usable) << "plugin " << r.name << " cannot start, so the conformance suite cannot run it: "
                              << r.reason;
        std::printf("plugin %s runs the conformance suite only (no model tests): %s\n", r.name.c_str(),
                    listed->second.c_str());
        EXPECT_EQ(std::count(model_plugins.begin(), model_plugins.end(), r.name), 0);
        EXPECT_EQ(std::count(conformance.begin(), conformance.end(), r.name), 1);
        auto plugin = load_plugin(r.name);
        for_each_op_with_empty_params([&](ops::Op op, const auto& params) {
            const std::string want = std::string(ops::op_name(op)) + " is not supported by the " + r.name + " plugin: ";
            const ops::SeqBatch batch;
            try {
                ops::run_op(plugin->backend(), params, &batch);
                ADD_FAILURE() << r.name << " ran " << ops::op_name(op) << ": remove it from plugins_without_ops()";
            } catch (const ops::Unsupported& e) {
                EXPECT_EQ(std::string(e.what()).rfind(want, 0), 0u) << e.what();
            }
        });
    }
    EXPECT_TRUE(skeleton) << "libhalo_skeleton.so was not found beside the test binaries (it is always built)";
}

}  // namespace halo::test
