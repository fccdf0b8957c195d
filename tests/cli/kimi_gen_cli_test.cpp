// kimi_gen as a user runs it: every --set must name a config field (an unknown one is an error naming the nearest
// field) and give a value of that field's type and range; a good --set reaches config.json.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_tool.h"
#include "tests/support/scratch_dir.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;

class KimiGenCli : public ::testing::Test {
protected:
    void SetUp() override {
        out_ = scratch_dir("halo_kimi_gen");
    }
    void TearDown() override { fs::remove_all(out_); }

    ToolRun gen(const std::vector<std::string>& sets) {
        std::vector<std::string> args = {"--preset", "tiny", "--quiet", "--out", out_.string()};
        for (const auto& s : sets) args.insert(args.end(), {"--set", s});
        return run_tool(HALO_KIMI_GEN_EXE, args);
    }
    // A refused --set writes nothing.
    void expect_refused(const std::string& set, const std::vector<std::string>& words) {
        expect_clear_error(gen({set}), words, "--set " + set);
        EXPECT_FALSE(fs::exists(out_ / "config.json")) << "--set " << set << " still wrote a checkpoint";
    }

    fs::path out_;
};

TEST_F(KimiGenCli, UnknownKeysAreErrorsNamingTheNearestField) {
    expect_refused("nonsense=3", {"'nonsense' is not a config field", "did you mean '"});
    expect_refused("hidden_sise=128", {"'hidden_sise'", "did you mean 'hidden_size'"});
    expect_refused("linear_attn_config.num_head=4", {"did you mean 'linear_attn_config.num_heads'"});
    expect_refused("hidden_size.width=3", {"'hidden_size.width' is not a config field"});
}

TEST_F(KimiGenCli, BadValuesAreErrorsNamingTheSetting) {
    expect_refused("hidden_size=abc", {"--set hidden_size=abc", "whole number", "'abc'"});
    expect_refused("hidden_size=1.5", {"--set hidden_size=1.5", "whole number"});
    expect_refused("num_key_value_heads=-2", {"--set num_key_value_heads=-2", "from 0"});
    expect_refused("moe_renormalize=maybe", {"--set moe_renormalize=maybe", "true or false"});
    expect_refused("rms_norm_eps=small", {"--set rms_norm_eps=small", "a number"});
    expect_refused("linear_attn_config.kda_layers=1", {"--set linear_attn_config.kda_layers=1", "a list"});
    // In the right type but out of the range the engine supports: the error points at the --set.
    expect_refused("hidden_size=99999999", {"--set hidden_size=99999999", "hidden_size", "more than the supported"});
    expect_refused("num_experts_per_token=9", {"--set num_experts_per_token=9", "larger than num_experts"});
    expect_refused("hidden_size", {"not of the form key=value"});
}

TEST_F(KimiGenCli, GoodSettingsReachTheConfig) {
    const ToolRun r = gen({"hidden_size=96", "linear_attn_config.short_conv_kernel_size=3", "moe_renormalize=false",
                           "bos_token_id=-1", "dtype=float32"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::ifstream f(out_ / "config.json");
    const nlohmann::json c = nlohmann::json::parse(f);
    EXPECT_EQ(c["hidden_size"], 96);
    EXPECT_EQ(c["linear_attn_config"]["short_conv_kernel_size"], 3);
    EXPECT_EQ(c["moe_renormalize"], false);
    EXPECT_EQ(c["bos_token_id"], -1);
    EXPECT_EQ(c["dtype"], "float32");
}

}  // namespace
}  // namespace halo::test
