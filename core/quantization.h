// Quantized weights at the model level: the compressed-tensors `quantization_config` of a checkpoint, the class of
// each Linear module, and the load-time quantization choices (which classes to quantize to int4 / int8).
#pragma once

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ops/dtype.h"

namespace halo {

// One config group of a compressed-tensors checkpoint: symmetric integer weights with per-group scales.
struct QuantScheme {
    std::string name;                  // "group_0"
    int32_t bits = 0;                  // 4 or 8
    int32_t group_size = 0;            // elements per scale along the input dimension
    std::vector<std::string> targets;  // "Linear", module names, or "re:" patterns
    ops::DType format() const { return bits == 4 ? ops::DType::q4 : ops::DType::q8; }
};

// config.json's quantization_config, checked: every key the engine cannot honour is refused when it is parsed.
struct QuantizationConfig {
    bool present = false;
    std::vector<QuantScheme> schemes;
    std::vector<std::string> ignore;  // module names or "re:" patterns that stay unquantized
    std::map<std::string, std::regex> patterns;  // every "re:" entry of ignore and targets, compiled once

    // The scheme for a Linear module ("model.layers.1.block_sparse_moe.experts.0.w1"), or null when the config
    // leaves it unquantized (ignored, or no group targets it).
    const QuantScheme* scheme_for(const std::string& module) const;
};

// Parses quantization_config (the JSON object). Throws ConfigError naming `source`, the key and what to do for
// anything but compressed-tensors pack-quantized symmetric int4/int8 weights with group strategy and static scales.
QuantizationConfig parse_quantization_config(const nlohmann::json& q, const std::string& source);

// The class of a weight tensor or module name, for load-time quantization choices.
enum class WeightClass {
    experts,    // routed experts: block_sparse_moe.experts.N.w1/w2/w3
    shared,     // shared experts and the dense MLP of the first layers
    attention,  // KDA and MLA projections (q/k/v/f_a/f_b/b/g_a/g_b/o, q_proj/kv_a/kv_b/o_proj)
    lm_head,    // the output projection (never the tied embedding)
    other,      // embeddings, norms, convs, router, biases: never quantized
};
WeightClass weight_class(const std::string& name);
const char* weight_class_name(WeightClass c);

// Load-time quantization of a float checkpoint: per class, keep the stored floats (f32 here means "keep") or
// quantize to q4 / q8 with `group` elements per BF16 scale, symmetric (the compressed-tensors recipe,
// ref::quantize_rows).
struct QuantChoice {
    ops::DType experts = ops::DType::f32;
    ops::DType shared = ops::DType::f32;
    ops::DType attention = ops::DType::f32;
    ops::DType lm_head = ops::DType::f32;
    int32_t group = 32;

    bool any() const;
    // q4 / q8 for a tensor this choice quantizes, f32 for one it keeps.
    ops::DType format_for(const std::string& name) const;
    std::string describe() const;  // "experts int4, attention int8 (group 32)" or "none"
};

// "int4" -> q4, "int8" -> q8, "none" / "" -> f32 (keep). Throws std::runtime_error naming `flag` otherwise.
ops::DType parse_quant_format(const std::string& text, const std::string& flag);

}  // namespace halo
