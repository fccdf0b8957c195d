// Whole model on every plugin vs the same model on the reference backend (double precision), for generated
// checkpoints of shapes and options the golden model does not have: F16 and F32 weights, tied embeddings, grouped
// expert routing, no shared expert, several shared experts, conv width 3, MoE every second layer, MLA value width
// unlike its key width, a single shard.
// Tolerance 2e-4 absolute on logits (std ~1): the F32 plugin vs double differs by ~1e-5 here.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "core/model.h"
#include "ops/reference/reference_backend.h"
#include "tests/support/plugins.h"
#include "tools/gen/checkpoint_writer.h"

namespace halo::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Variant {
    std::string name;
    std::function<void(json&)> edit;
    std::string dtype = "BF16";
    int shards = 1;
};

std::vector<float> run(ops::Backend& b, const fs::path& dir, const std::vector<int32_t>& prompt, int decode) {
    ModelOptions o;
    o.max_context = 64;
    o.page_size = 8;
    o.max_step_rows = 16;  // several steps
    Model m(b, dir, o);
    Sequence s;
    m.begin_sequence(s);
    std::vector<float> logits = m.prefill(s, prompt, true);
    const int64_t V = m.config().vocab_size;
    int32_t id = prompt.back();
    for (int i = 0; i < decode; ++i) {
        id = (id * 7 + 3) % int32_t(V);
        StepItem it{&s, std::span<const int32_t>(&id, 1), LogitRows::last};
        m.step(std::span<const StepItem>(&it, 1), logits);
    }
    return logits;
}

class GeneratedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GeneratedModel, MatchesReferenceBackend) {
    const std::vector<Variant> variants = {
        {"f16_weights", [](json&) {}, "F16"},
        {"f32_weights_sharded", [](json&) {}, "F32", 3},
        {"tied_embeddings", [](json& c) { c["tie_word_embeddings"] = true; }},
        {"grouped_routing", [](json& c) { c["num_experts"] = 8; c["num_expert_group"] = 4; c["topk_group"] = 2; c["num_experts_per_token"] = 3; }},
        {"no_shared_expert", [](json& c) { c["num_shared_experts"] = 0; }},
        {"two_shared_experts_conv3", [](json& c) { c["num_shared_experts"] = 2; c["linear_attn_config"]["short_conv_kernel_size"] = 3; }},
        {"moe_every_second_layer", [](json& c) { c["moe_layer_freq"] = 2; c["first_k_dense_replace"] = 0; c["moe_renormalize"] = false; }},
        {"mla_value_width_differs", [](json& c) {
             c["v_head_dim"] = 24;
             c["qk_nope_head_dim"] = 12;
             c["qk_rope_head_dim"] = 4;
             c["kv_lora_rank"] = 40;
             c["num_attention_heads"] = 3;
             c["num_key_value_heads"] = 3;
             c["linear_attn_config"]["head_dim"] = 24;
         }},
        {"mla_first_odd_heads", [](json& c) {
             c["linear_attn_config"]["kda_layers"] = {2, 4};
             c["linear_attn_config"]["full_attn_layers"] = {1, 3};
             c["linear_attn_config"]["num_heads"] = 3;
             c["num_attention_heads"] = 3;
             c["hidden_size"] = 48;
         }},
    };
    auto plugin = load_plugin(GetParam());
    auto reference = ref::make_reference_backend();
    for (const Variant& v : variants) {
        const fs::path dir = fs::temp_directory_path() / ("halo_gen_" + GetParam() + "_" + v.name + "_" + std::to_string(::getpid()));
        json config = gen::preset_config("tiny");
        v.edit(config);
        gen::GenOptions o;
        o.seed = 11;
        o.weight_dtype = v.dtype;
        o.shards = v.shards;
        gen::write_checkpoint(dir, config, o);
        std::vector<int32_t> prompt;
        for (int i = 0; i < 37; ++i) prompt.push_back((i * 53 + 11) % 384);
        const auto want = run(*reference, dir, prompt, 5);
        const auto got = run(plugin->backend(), dir, prompt, 5);
        ASSERT_EQ(got.size(), want.size()) << v.name;
        float worst = 0;
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
        EXPECT_LE(worst, 2e-4f) << v.name;
        EXPECT_TRUE(std::isfinite(worst)) << v.name;
        fs::remove_all(dir);
    }
}

// A valid file whose JSON header is not padded to 8 bytes puts every tensor at an odd offset. Weights that cannot be
// used in place at their element alignment are copied (aligned) instead, with the same results as the padded file.
TEST_P(GeneratedModel, UnpaddedHeaderIsCopiedNotMisread) {
    const fs::path base = fs::temp_directory_path() / ("halo_align_" + GetParam() + "_" + std::to_string(::getpid()));
    const fs::path padded = base / "padded", odd = base / "odd";
    gen::GenOptions o;
    o.seed = 5;
    gen::write_checkpoint(padded, gen::preset_config("tiny"), o);
    fs::create_directories(odd);
    fs::copy_file(padded / "config.json", odd / "config.json");
    {
        std::ifstream in(padded / "model.safetensors", std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        uint64_t n = 0;
        std::memcpy(&n, bytes.data(), 8);
        const uint64_t n1 = n + 1;  // one more space after the JSON: the data section is unchanged but shifted by 1
        std::ofstream out(odd / "model.safetensors", std::ios::binary);
        out.write(reinterpret_cast<const char*>(&n1), 8);
        out.write(bytes.data() + 8, std::streamsize(n));
        out.put(' ');
        out.write(bytes.data() + 8 + n, std::streamsize(bytes.size() - 8 - n));
    }
    std::vector<int32_t> prompt;
    for (int i = 0; i < 21; ++i) prompt.push_back((i * 31 + 7) % 384);
    auto plugin = load_plugin(GetParam());
    {
        Model m(plugin->backend(), odd, ModelOptions{});
        EXPECT_FALSE(m.plan().weights_zero_copy);
    }
    const auto want = run(plugin->backend(), padded, prompt, 3);
    const auto got = run(plugin->backend(), odd, prompt, 3);
    ASSERT_EQ(got.size(), want.size());
    // Same weights; a GPU plugin may still pick other kernel variants for other buffer layouts (F32 rounding).
    float worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LE(worst, 1e-5f);
    fs::remove_all(base);
}

INSTANTIATE_TEST_SUITE_P(Plugins, GeneratedModel, ::testing::ValuesIn(plugins_under_test()),
                         [](const auto& info) { return info.param; });

}  // namespace

}  // namespace halo::test
