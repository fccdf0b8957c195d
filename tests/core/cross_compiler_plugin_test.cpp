// A plugin built by another compiler than the core (a HIP plugin is built by hipcc, which is clang; the core by
// GCC): the skeleton plugin built a second time with clang++ into CLANG_PLUGIN_DIR, loaded into this GCC-built
// process through the normal loader. Exceptions thrown in the plugin arrive as ops::Error and its subclasses, caught
// by type with the plugin's sentence, also through the core's decorators; standard-library strings and vectors cross
// both ways: the core's options go in and the plugin's probe, error string and DeviceInfo come out, allocated on
// one side and freed on the other.
#include <filesystem>

#include <gtest/gtest.h>

#include "core/op_timing_backend.h"
#include "core/plugin_loader.h"
#include "tests/support/each_op.h"

namespace halo::test {

using namespace halo::ops;

namespace {

std::unique_ptr<LoadedBackend> clang_skeleton(const BackendOptions& options = {}) {
    return load_backend("skeleton", options, CLANG_PLUGIN_DIR);
}

void expect_words(const std::string& text, const std::vector<std::string>& words) {
    for (const std::string& w : words)
        EXPECT_NE(text.find(w), std::string::npos) << "'" << text << "' lacks '" << w << "'";
}

}  // namespace

TEST(CrossCompilerPlugin, TheSkeletonLoadedIsTheClangBuild) {
#if defined(__clang__)
    std::printf("note: this core is itself built by clang, so the plugin's compiler is not a different one\n");
#endif
    bool found = false;
    for (const PluginReport& r : discover_plugins(CLANG_PLUGIN_DIR))
        if (r.name == "skeleton") {
            found = true;
            EXPECT_EQ(r.path.parent_path(), std::filesystem::path(CLANG_PLUGIN_DIR));
            ASSERT_TRUE(r.usable) << r.reason;
            EXPECT_NE(r.probe.version.find("built with clang"), std::string::npos) << r.probe.version;
            EXPECT_EQ(r.probe.devices, std::vector<std::string>{"host memory (skeleton plugin: runs no ops)"});
            break;  // the named directory is searched first and wins
        }
    ASSERT_TRUE(found);
    EXPECT_EQ(clang_skeleton()->path().parent_path(), std::filesystem::path(CLANG_PLUGIN_DIR));
}

TEST(CrossCompilerPlugin, OpErrorsArriveByTypeWithThePluginsSentence) {
    auto plugin = clang_skeleton();
    Backend& b = plugin->backend();
    OpTimingBackend timed(b);  // a GCC-built decorator the exceptions unwind through
    for_each_op_with_empty_params([&](Op op, const auto& params) {
        const SeqBatch batch;
        const std::string want = std::string(op_name(op)) +
                                 " is not supported by the skeleton plugin: it is the template for new backends";
        for (Backend* target : {&b, static_cast<Backend*>(&timed)}) {
            try {
                run_op(*target, params, &batch);
                ADD_FAILURE() << op_name(op) << " ran on the skeleton";
            } catch (const Unsupported& e) {
                EXPECT_EQ(std::string(e.what()).rfind(want, 0), 0u) << e.what();
            }
            EXPECT_THROW(run_op(*target, params, &batch), Error);
            EXPECT_THROW(run_op(*target, params, &batch), std::runtime_error);
        }
    });
}

TEST(CrossCompilerPlugin, OutOfMemoryIsCaughtByTypeAndOtherErrorsAreNot) {
    auto plugin = clang_skeleton();
    Backend& b = plugin->backend();
    try {
        b.allocate(MemoryUse::cache, 0, uint64_t(1) << 62);
        FAIL() << "4 EiB were allocated";
    } catch (const OutOfMemory& e) {
        expect_words(e.what(), {"skeleton", "4611686018427387904 bytes", "host", "cache"});
    }
    try {
        b.allocate(MemoryUse::scratch, 7, 64);
        FAIL() << "placement 7 was accepted";
    } catch (const OutOfMemory& e) {
        FAIL() << "a bad placement is not a lack of memory: " << e.what();
    } catch (const Error& e) {
        expect_words(e.what(), {"placement index 7", "does not exist"});
    }
    // A buffer the plugin allocated, written and read by the core, then released by the plugin.
    Buffer* buf = b.allocate(MemoryUse::scratch, 0, 64);
    const std::vector<float> in = {1.5f, -2.0f, 3.25f};
    std::vector<float> out(3);
    b.write(buf, 8, in.data(), 12);
    b.read(buf, 8, out.data(), 12);
    EXPECT_EQ(out, in);
    EXPECT_THROW(b.read(buf, 60, out.data(), 12), Error);
    b.release(buf);
}

TEST(CrossCompilerPlugin, StringsAndVectorsCrossBothWays) {
    // In: the core's device_name (long enough to live on the heap); out: the plugin's error, in the loader's sentence.
    BackendOptions o;
    o.device_name = "a device this machine does not have, named at length";
    try {
        clang_skeleton(o);
        FAIL() << "a device name that matches nothing was accepted";
    } catch (const PluginError& e) {
        expect_words(e.what(), {"backend 'skeleton' failed to start", "no device matches '" + o.device_name + "'",
                                "host memory (skeleton plugin: runs no ops)"});
    }
    o.device_name = "skeleton plugin";
    auto plugin = clang_skeleton(o);
    const DeviceInfo& d = plugin->backend().device();
    EXPECT_EQ(d.name, "host memory (skeleton plugin: runs no ops)");
    EXPECT_EQ(d.kind, "cpu");
    ASSERT_EQ(d.placements.size(), 1u);
    EXPECT_EQ(d.placements[0].name, "host");
    EXPECT_EQ(d.placements[0].pool, "system memory");
    EXPECT_TRUE(d.placements[0].imports_host);
    for (const std::string& p : d.default_placement) EXPECT_EQ(p, "host");
    ASSERT_EQ(d.notes.size(), 1u);
    EXPECT_NE(d.notes[0].find("template for new backends"), std::string::npos) << d.notes[0];
    // The core copies and grows what the plugin built; the plugin frees its own when the backend is deleted.
    DeviceInfo copy = d;
    copy.notes.push_back("added by the core, after the plugin's note");
    copy.placements.push_back(copy.placements[0]);
    copy.placements[1].name += "-copy";
    EXPECT_EQ(copy.notes[0], d.notes[0]);
    EXPECT_EQ(copy.placements[1].name, "host-copy");
    EXPECT_EQ(copy.placements[1].description, d.placements[0].description);
    plugin.reset();
    EXPECT_EQ(copy.notes.size(), 2u);
}

}  // namespace halo::test
