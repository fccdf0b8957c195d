// The engine's plugin options as a user gives them: --threads beyond the hardware runs (capped, with a one-line
// warning) about as fast as the hardware's own count instead of oversubscribing the machine for minutes; a
// --plugin-dir that does not exist or holds no plugin, and an HALO_CPU_ISA the CPU plugin cannot honour, are errors
// that name the input.
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/cli/run_tool.h"
#include "tests/support/plugins.h"

namespace halo::test {
namespace {

std::string tiny_model() { return (std::filesystem::path(golden_dir()) / "tiny").string(); }

ToolRun engine(const std::vector<std::string>& args, const std::vector<std::string>& env = {}, int timeout_s = 120) {
    return run_tool(HALO_ENGINE_EXE, args, env, timeout_s);
}

TEST(EnginePluginOptions, ThreadsAboveTheHardwareAreCappedAndFast) {
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    const std::vector<std::string> run = {"--backend=cpu", "--model", tiny_model(), "--prompt-ids", "1,2,3",
                                          "--max-tokens", "4"};
    auto with_threads = [&](int n) {
        std::vector<std::string> a = run;
        a.insert(a.end(), {"--threads", std::to_string(n)});
        return a;
    };
    const ToolRun own = engine(with_threads(hardware));
    ASSERT_EQ(own.code, 0) << own.err;
    // Uncapped, 4096 threads on a 2-core machine took 40 s for these 4 tokens; capped, as long as --threads 2.
    const ToolRun many = engine(with_threads(4096), {}, 30);
    ASSERT_EQ(many.code, 0) << (many.code == 124 ? "timed out: the thread count was not capped\n" : "") << many.err;
    EXPECT_EQ(many.out, own.out) << "the same tokens";
    EXPECT_NE(many.err.find("cpu: --threads 4096 exceeds the " + std::to_string(hardware) + " hardware thread"),
              std::string::npos)
        << many.err;
    EXPECT_EQ(own.err.find("exceeds"), std::string::npos) << own.err;
    EXPECT_LT(many.seconds, own.seconds + 10) << "--threads 4096 took " << many.seconds << " s, --threads " << hardware
                                              << " " << own.seconds << " s";
}

TEST(EnginePluginOptions, APluginDirectoryThatDoesNotExistIsAnError) {
    expect_clear_error(engine({"--model", tiny_model(), "--prompt-ids", "1", "--max-tokens", "1", "--plugin-dir",
                               "/nonexistent"}),
                       {"plugin directory /nonexistent does not exist", "--plugin-dir"}, "--plugin-dir /nonexistent");
    expect_clear_error(engine({"backends", "--plugin-dir", "/nonexistent"}),
                       {"plugin directory /nonexistent does not exist"}, "backends --plugin-dir /nonexistent");
}

TEST(EnginePluginOptions, APluginDirectoryWithoutPluginsIsAnError) {
    const auto dir = std::filesystem::temp_directory_path() / ("halo_no_plugins_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const ToolRun r = engine({"--model", tiny_model(), "--prompt-ids", "1", "--max-tokens", "1", "--plugin-dir", dir.string()});
    std::filesystem::remove_all(dir);
    expect_clear_error(r, {"plugin directory " + dir.string(), "has no plugins in it"}, "--plugin-dir of an empty folder");
}

TEST(EnginePluginOptions, AnUnknownCpuIsaIsAnError) {
    expect_clear_error(engine({"--backend=cpu", "--model", tiny_model(), "--prompt-ids", "1", "--max-tokens", "1"},
                              {"HALO_CPU_ISA=avx2"}),
                       {"HALO_CPU_ISA=avx2", "generic, avx512"}, "HALO_CPU_ISA=avx2");
}

}  // namespace
}  // namespace halo::test
