// The model's config.json, parsed and checked: what the engine needs to build the Kimi-Linear graph.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/quantization.h"

namespace halo {

enum class MixerKind { kda, mla };
enum class FfnKind { dense, moe };

struct ModelConfig {
    std::string model_type;          // must be "kimi_linear"
    std::string dtype = "bfloat16";  // "dtype" (or legacy "torch_dtype"); informative only
    int64_t vocab_size = 0;          // rows of embed_tokens and lm_head
    int64_t hidden_size = 0;         // residual stream width
    int64_t intermediate_size = 0;   // dense MLP width (layers before first_k_dense_replace)
    int32_t num_hidden_layers = 0;
    double rms_norm_eps = 1e-5;      // every RMSNorm, including the KDA gated norm
    bool tie_word_embeddings = false;
    int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;
    int64_t model_max_length = 0;    // 0 when absent

    // KDA (linear_attn_config)
    int32_t kda_num_heads = 0;       // H
    int32_t kda_head_dim = 0;        // K (= V)
    int32_t short_conv_kernel_size = 0;
    std::vector<int32_t> kda_layers;        // 1-based, as in the file
    std::vector<int32_t> full_attn_layers;  // 1-based, as in the file

    // MLA
    int32_t num_attention_heads = 0;
    int32_t kv_lora_rank = 0;
    int32_t qk_nope_head_dim = 0;
    int32_t qk_rope_head_dim = 0;
    int32_t v_head_dim = 0;

    // MoE
    int32_t num_experts = 0;
    int32_t num_experts_per_token = 0;
    int64_t moe_intermediate_size = 0;
    int32_t num_shared_experts = 0;
    int32_t first_k_dense_replace = 0;
    int32_t moe_layer_freq = 1;
    int32_t num_expert_group = 1;
    int32_t topk_group = 1;
    bool moe_renormalize = true;
    double routed_scaling_factor = 1.0;

    // compressed-tensors quantization_config (present = false for a float checkpoint)
    QuantizationConfig quant;

    // Derived, 0-based: which mixer and which FFN each checkpoint layer has.
    std::vector<MixerKind> mixer;
    std::vector<FfnKind> ffn;

    int32_t count(MixerKind k) const;
    int32_t count(FfnKind k) const;
    // Index of layer i among the layers of its mixer kind (its state / cache index).
    int32_t mixer_index(int32_t layer) const;
};

// Parses and checks a config.json document. `source` names the file in error messages.
// Throws ConfigError with a sentence naming the field and what is wrong.
ModelConfig parse_model_config(const nlohmann::json& doc, const std::string& source);
ModelConfig load_model_config(const std::filesystem::path& model_dir);

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace halo
