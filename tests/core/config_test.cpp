// config.json parsing: the real 48B-A3B file, the 1-based layer lists, and every rejection being a sentence.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/weights.h"

namespace halo::test {

using nlohmann::json;

namespace {

// The released Kimi-Linear-48B-A3B-Instruct config.json (KIMI_LINEAR.md section 1.1).
json real_config() {
    return json::parse(R"({
  "architectures": ["KimiLinearForCausalLM"], "bos_token_id": 163584, "dtype": "bfloat16", "eos_token_id": 163586,
  "first_k_dense_replace": 1, "head_dim": 72, "hidden_act": "silu", "hidden_size": 2304, "initializer_range": 0.02,
  "intermediate_size": 9216, "kv_lora_rank": 512,
  "linear_attn_config": {"full_attn_layers": [4, 8, 12, 16, 20, 24, 27], "head_dim": 128,
    "kda_layers": [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26], "num_heads": 32,
    "short_conv_kernel_size": 4},
  "mla_use_nope": true, "model_max_length": 1048576, "model_type": "kimi_linear", "moe_intermediate_size": 1024,
  "moe_layer_freq": 1, "moe_renormalize": true, "moe_router_activation_func": "sigmoid", "num_attention_heads": 32,
  "num_expert_group": 1, "num_experts": 256, "num_experts_per_token": 8, "num_hidden_layers": 27,
  "num_key_value_heads": 32, "num_nextn_predict_layers": 0, "num_shared_experts": 1, "pad_token_id": 163839,
  "q_lora_rank": null, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 10000.0, "routed_scaling_factor": 2.446, "tie_word_embeddings": false, "topk_group": 1,
  "transformers_version": "4.57.1", "use_cache": true, "use_grouped_topk": true, "v_head_dim": 128,
  "vocab_size": 163840})");
}

std::string error_of(const json& j) {
    try {
        parse_model_config(j, "config.json");
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

TEST(Config, RealCheckpointLayout) {
    const ModelConfig c = parse_model_config(real_config(), "config.json");
    EXPECT_EQ(c.count(MixerKind::kda), 20);
    EXPECT_EQ(c.count(MixerKind::mla), 7);
    for (int i : {3, 7, 11, 15, 19, 23, 26}) EXPECT_EQ(c.mixer[size_t(i)], MixerKind::mla) << i;
    for (int i : {0, 1, 2, 4, 24, 25}) EXPECT_EQ(c.mixer[size_t(i)], MixerKind::kda) << i;
    EXPECT_EQ(c.ffn[0], FfnKind::dense);
    EXPECT_EQ(c.count(FfnKind::moe), 26);
    EXPECT_EQ(c.mixer_index(26), 6);
    EXPECT_EQ(c.mixer_index(25), 19);
    // The tensor list reproduces the release's parameter count exactly (KIMI_LINEAR.md section 2).
    EXPECT_EQ(count_parameters(c), 49122681728ll);
    ModelWeights w;
    int tensors = 0;
    for_each_tensor(c, w, [&](const TensorSpec&, ops::Tensor&) { ++tensors; });
    EXPECT_EQ(tensors, 20493);
}

TEST(Config, Rejections) {
    struct Case {
        std::function<void(json&)> edit;
        std::vector<std::string> words;
    };
    const std::vector<Case> cases = {
        {[](json& j) { j["model_type"] = "deepseek_v3"; }, {"deepseek_v3", "kimi_linear"}},
        {[](json& j) { j.erase("model_type"); }, {"model_type", "kimi_linear"}},
        {[](json& j) { j["linear_attn_config"]["kda_layers"][0] = 0; }, {"kda_layers", "1-based"}},
        {[](json& j) { j["linear_attn_config"]["kda_layers"][1] = 1; }, {"kda_layers", "twice"}},
        {[](json& j) { j["linear_attn_config"]["full_attn_layers"][0] = 1; }, {"full_attn_layers", "kda_layers"}},
        {[](json& j) { j["linear_attn_config"]["full_attn_layers"][0] = 28; }, {"full_attn_layers", "28"}},
        {[](json& j) { j["q_lora_rank"] = 1536; }, {"q_lora_rank", "null"}},
        {[](json& j) { j["gate_lower_bound"] = -5; }, {"gate_lower_bound"}},
        {[](json& j) { j["mla_use_output_gate"] = true; }, {"mla_use_output_gate"}},
        {[](json& j) { j["mla_use_nope"] = false; }, {"mla_use_nope", "rotary"}},
        {[](json& j) { j["moe_router_activation_func"] = "softmax"; }, {"softmax", "sigmoid"}},
        {[](json& j) { j["hidden_act"] = "gelu"; }, {"hidden_act", "gelu"}},
        {[](json& j) { j["hidden_size"] = "2304"; }, {"hidden_size", "integer"}},
        {[](json& j) { j["hidden_size"] = -1; }, {"hidden_size", "at least"}},
        {[](json& j) { j.erase("vocab_size"); }, {"vocab_size", "missing"}},
        {[](json& j) { j["num_experts_per_token"] = 300; }, {"num_experts_per_token", "num_experts"}},
        {[](json& j) { j["num_expert_group"] = 3; }, {"num_expert_group", "divide"}},
        {[](json& j) { j["linear_attn_config"] = 5; }, {"linear_attn_config", "object"}},
        {[](json& j) { j["rms_norm_eps"] = 0; }, {"rms_norm_eps", "between 0 and 1"}},
        {[](json& j) { j["rms_norm_eps"] = 1e300; }, {"rms_norm_eps", "between 0 and 1"}},
        {[](json& j) { j["routed_scaling_factor"] = -5; }, {"routed_scaling_factor", "positive"}},
        {[](json& j) { j["routed_scaling_factor"] = 1e300; }, {"routed_scaling_factor", "at most 1e6"}},
        {[](json& j) { j["eos_token_id"] = 999999; }, {"eos_token_id", "more than the supported"}},
        {[](json& j) { j["num_hidden_layers"] = 2000000000; }, {"num_hidden_layers", "supported"}},
        {[](json& j) { j["num_hidden_layers"] = 4294967300ull; }, {"num_hidden_layers", "supported"}},
        {[](json& j) { j["linear_attn_config"]["kda_layers"][0] = 4294967297ull; }, {"kda_layers", "not a layer number"}},
        {[](json& j) { j["hidden_size"] = 18446744073709551615ull; }, {"hidden_size", "too large"}},
        {[](json& j) { j["vocab_size"] = 1ll << 40; }, {"vocab_size", "supported"}},
    };
    for (const Case& c : cases) {
        json j = real_config();
        c.edit(j);
        const std::string e = error_of(j);
        ASSERT_FALSE(e.empty()) << "accepted: " << j.dump().substr(0, 80);
        EXPECT_EQ(e.rfind("config.json", 0), 0u) << e;
        for (const auto& w : c.words) EXPECT_NE(e.find(w), std::string::npos) << "'" << e << "' lacks '" << w << "'";
    }
}

TEST(Config, AcceptedVariants) {
    json j = real_config();
    j.erase("dtype");
    j["torch_dtype"] = "bfloat16";
    j["gate_lower_bound"] = false;
    EXPECT_EQ(error_of(j), "");
    j = real_config();
    j["num_expert_group"] = 8;
    j["topk_group"] = 4;
    const ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_EQ(c.num_expert_group, 8);
    j = real_config();
    j["tie_word_embeddings"] = true;
    int tensors = 0;
    ModelWeights w;
    for_each_tensor(parse_model_config(j, "config.json"), w, [&](const TensorSpec&, ops::Tensor&) { ++tensors; });
    EXPECT_EQ(tensors, 20492);  // no lm_head
}

}  // namespace

}  // namespace halo::test
