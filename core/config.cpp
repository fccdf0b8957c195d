#include "core/config.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/file_kind.h"
#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"

namespace halo {

using nlohmann::json;

int32_t ModelConfig::count(MixerKind k) const { return int32_t(std::count(mixer.begin(), mixer.end(), k)); }

int32_t ModelConfig::count(FfnKind k) const { return int32_t(std::count(ffn.begin(), ffn.end(), k)); }

int32_t ModelConfig::mixer_index(int32_t layer) const {
    return int32_t(std::count(mixer.begin(), mixer.begin() + layer, mixer[size_t(layer)]));
}

namespace {

// Upper bounds on config values: generous for any real checkpoint (the largest Kimi models are far below them),
// small enough that no product of a few of them overflows 64 bits and that nothing absurd is allocated.
constexpr int64_t kMaxDim = 1 << 20;        // widths, heads, ranks, experts
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = 1 << 24;

// Reads fields of one JSON object, turning every problem into a sentence that names the file and the field.
class Fields {
public:
    Fields(const json& obj, std::string source, std::string prefix)
        : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw ConfigError(source_ + ": field " + input::quote(prefix_ + key) + " " + what);
    }
    bool has(const std::string& key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }
    const json& raw(const std::string& key) const {
        if (!obj_.contains(key)) fail(key, "is missing");
        return obj_.at(key);
    }
    // An integer in [min_value, max_value]; the default bound keeps every derived size far from overflow.
    int64_t integer(const std::string& key, int64_t min_value = 1, int64_t max_value = kMaxDim) const {
        const json& v = raw(key);
        if (!v.is_number_integer()) fail(key, "must be an integer, not " + input::json_excerpt(v));
        if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) fail(key, "is far too large");
        const int64_t x = v.get<int64_t>();
        if (x < min_value) fail(key, "must be at least " + std::to_string(min_value) + ", not " + std::to_string(x));
        if (x > max_value) fail(key, "is " + std::to_string(x) + ", more than the supported " + std::to_string(max_value));
        return x;
    }
    int64_t integer_or(const std::string& key, int64_t fallback, int64_t min_value = 0, int64_t max_value = kMaxDim) const {
        return has(key) ? integer(key, min_value, max_value) : fallback;
    }
    double number(const std::string& key) const {
        const json& v = raw(key);
        if (!v.is_number()) fail(key, "must be a number, not " + input::json_excerpt(v));
        return v.get<double>();
    }
    double number_or(const std::string& key, double fallback) const { return has(key) ? number(key) : fallback; }
    bool boolean_or(const std::string& key, bool fallback) const {
        if (!has(key)) return fallback;
        const json& v = raw(key);
        if (!v.is_boolean()) fail(key, "must be true or false, not " + input::json_excerpt(v));
        return v.get<bool>();
    }
    std::string string_or(const std::string& key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const json& v = raw(key);
        if (!v.is_string()) fail(key, "must be a string, not " + input::json_excerpt(v));
        return v.get<std::string>();
    }
    std::vector<int32_t> int_list(const std::string& key) const {
        const json& v = raw(key);
        if (!v.is_array()) fail(key, "must be a list of layer numbers");
        std::vector<int32_t> out;
        if (v.size() > size_t(kMaxLayers)) fail(key, "lists more than " + std::to_string(kMaxLayers) + " layers");
        for (const json& e : v) {
            if (!e.is_number_integer()) fail(key, "must hold only integers, not " + input::json_excerpt(e));
            const int64_t x = e.get<int64_t>();
            if (x < INT32_MIN || x > INT32_MAX) fail(key, "holds " + input::json_excerpt(e) + ", which is not a layer number");
            out.push_back(int32_t(x));
        }
        return out;
    }

private:
    const json& obj_;
    std::string source_, prefix_;
};

}  // namespace

ModelConfig parse_model_config(const json& doc, const std::string& source) {
    if (!doc.is_object()) throw ConfigError(source + ": expected a JSON object at the top level");
    Fields f(doc, source, "");
    ModelConfig c;
    c.model_type = f.string_or("model_type", "");
    if (c.model_type != "kimi_linear")
        throw ConfigError(source + ": model_type is " + input::quote(c.model_type) +
                          ", but this engine runs only 'kimi_linear' (Kimi-Linear) checkpoints");
    c.dtype = f.has("dtype") ? f.string_or("dtype", "bfloat16") : f.string_or("torch_dtype", "bfloat16");
    c.vocab_size = f.integer("vocab_size", 1, kMaxVocab);
    c.hidden_size = f.integer("hidden_size");
    c.num_hidden_layers = int32_t(f.integer("num_hidden_layers", 1, kMaxLayers));
    c.rms_norm_eps = f.number("rms_norm_eps");
    if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) f.fail("rms_norm_eps", "must be between 0 and 1 (typically 1e-5 or 1e-6)");
    c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
    c.bos_token_id = f.integer_or("bos_token_id", -1, -1, c.vocab_size - 1);  // -1: none
    c.eos_token_id = f.integer_or("eos_token_id", -1, -1, c.vocab_size - 1);
    c.pad_token_id = f.integer_or("pad_token_id", -1, -1, c.vocab_size - 1);
    c.model_max_length = f.integer_or("model_max_length", 0, 0, INT64_MAX / 2);

    if (doc.contains("quantization_config") && !doc.at("quantization_config").is_null())
        c.quant = parse_quantization_config(doc.at("quantization_config"), source);

    const std::string act = f.string_or("hidden_act", "silu");
    if (act != "silu") f.fail("hidden_act", "is " + input::quote(act) + "; only 'silu' is supported");

    // Features of other members of the family that this checkpoint layout does not have.
    for (const char* key : {"gate_lower_bound", "use_full_rank_gate", "mla_use_output_gate"})
        if (f.has(key) && doc.at(key) != false)
            f.fail(key, "is set; lower-bound KDA gates, full-rank gates and gated MLA (Kimi-K3 style) are not supported");
    if (f.has("q_lora_rank")) f.fail("q_lora_rank", "must be null: MLA with a low-rank query projection is not supported");
    if (!f.boolean_or("mla_use_nope", true))
        f.fail("mla_use_nope", "is false; only NoPE MLA (no rotary embedding) is supported");

    // KDA
    const json& lin = f.raw("linear_attn_config");
    if (!lin.is_object()) f.fail("linear_attn_config", "must be an object");
    Fields l(lin, source, "linear_attn_config.");
    c.kda_num_heads = int32_t(l.integer("num_heads"));
    c.kda_head_dim = int32_t(l.integer("head_dim"));
    c.short_conv_kernel_size = int32_t(l.integer("short_conv_kernel_size"));
    c.kda_layers = l.int_list("kda_layers");
    c.full_attn_layers = l.has("full_attn_layers") ? l.int_list("full_attn_layers") : std::vector<int32_t>{};

    // Layer kinds: the lists are 1-based; a layer not in kda_layers is MLA.
    std::set<int32_t> kda_set, mla_set;
    for (int32_t n : c.kda_layers) {
        if (n < 1 || n > c.num_hidden_layers)
            l.fail("kda_layers", "holds " + std::to_string(n) + ", outside 1.." + std::to_string(c.num_hidden_layers) +
                                     " (the lists are 1-based)");
        if (!kda_set.insert(n).second) l.fail("kda_layers", "lists layer " + std::to_string(n) + " twice");
    }
    for (int32_t n : c.full_attn_layers) {
        if (n < 1 || n > c.num_hidden_layers)
            l.fail("full_attn_layers", "holds " + std::to_string(n) + ", outside 1.." +
                                           std::to_string(c.num_hidden_layers) + " (the lists are 1-based)");
        if (kda_set.count(n)) l.fail("full_attn_layers", "lists layer " + std::to_string(n) + ", which kda_layers also lists");
        if (!mla_set.insert(n).second) l.fail("full_attn_layers", "lists layer " + std::to_string(n) + " twice");
    }

    // MoE / dense FFN
    c.first_k_dense_replace = int32_t(f.integer_or("first_k_dense_replace", 0, 0, kMaxLayers));
    c.moe_layer_freq = int32_t(f.integer_or("moe_layer_freq", 1, 1, kMaxLayers));
    c.num_experts = int32_t(f.integer_or("num_experts", 0));
    for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
        c.mixer.push_back(kda_set.count(i + 1) ? MixerKind::kda : MixerKind::mla);
        const bool moe = c.num_experts > 0 && i >= c.first_k_dense_replace && i % c.moe_layer_freq == 0;
        c.ffn.push_back(moe ? FfnKind::moe : FfnKind::dense);
    }
    if (c.count(FfnKind::dense) > 0) c.intermediate_size = f.integer("intermediate_size");
    if (c.count(FfnKind::moe) > 0) {
        c.num_experts_per_token = int32_t(f.integer("num_experts_per_token"));
        if (c.num_experts_per_token > c.num_experts)
            f.fail("num_experts_per_token", "is larger than num_experts (" + std::to_string(c.num_experts) + ")");
        c.moe_intermediate_size = f.integer("moe_intermediate_size");
        c.num_shared_experts = int32_t(f.integer_or("num_shared_experts", 0));
        c.moe_renormalize = f.boolean_or("moe_renormalize", true);
        c.routed_scaling_factor = f.number_or("routed_scaling_factor", 1.0);
        if (!(c.routed_scaling_factor > 0 && c.routed_scaling_factor <= 1e6))
            f.fail("routed_scaling_factor", "must be a positive number of at most 1e6 (the real models use 1 to 2.5)");
        const std::string router = f.string_or("moe_router_activation_func", "sigmoid");
        if (router != "sigmoid")
            f.fail("moe_router_activation_func", "is " + input::quote(router) + "; only the 'sigmoid' router is supported");
        if (f.boolean_or("use_grouped_topk", true)) {
            c.num_expert_group = int32_t(f.integer_or("num_expert_group", 1, 1));
            c.topk_group = int32_t(f.integer_or("topk_group", 1, 1));
        }
        if (c.num_experts % c.num_expert_group != 0)
            f.fail("num_expert_group", "must divide num_experts (" + std::to_string(c.num_experts) + ")");
        if (c.topk_group > c.num_expert_group) f.fail("topk_group", "is larger than num_expert_group");
        if (int64_t(c.topk_group) * (c.num_experts / c.num_expert_group) < c.num_experts_per_token)
            f.fail("topk_group", "keeps fewer experts than num_experts_per_token");
    }

    // MLA
    if (c.count(MixerKind::mla) > 0) {
        c.num_attention_heads = int32_t(f.integer("num_attention_heads"));
        c.kv_lora_rank = int32_t(f.integer("kv_lora_rank"));
        c.qk_nope_head_dim = int32_t(f.integer("qk_nope_head_dim"));
        c.qk_rope_head_dim = int32_t(f.integer("qk_rope_head_dim", 0));
        c.v_head_dim = int32_t(f.integer("v_head_dim"));
    }
    if (c.short_conv_kernel_size < 1 || c.short_conv_kernel_size > 16)
        l.fail("short_conv_kernel_size", "must be between 1 and 16");
    return c;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
    const auto path = model_dir / "config.json";
    if (const std::string why = why_not_a_file(path); !why.empty()) throw ConfigError(path.string() + " " + why);
    if (!std::filesystem::exists(model_dir)) throw ConfigError("model directory " + model_dir.string() + " does not exist");
    if (!std::filesystem::exists(path)) throw ConfigError("model directory " + model_dir.string() + " has no config.json");
    try {
        return parse_model_config(input::read_json_file(path, input::kConfigJson), path.string());
    } catch (const input::InputError& e) {
        throw ConfigError(e.what());
    }
}

}  // namespace halo
