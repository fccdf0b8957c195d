#include "tools/gen/checkpoint_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "core/config.h"
#include "core/safetensors.h"
#include "core/weights.h"
#include "ops/dtype.h"

namespace halo::gen {

using nlohmann::json;

namespace {

uint64_t mix(uint64_t z) {  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return mix(h);
}

// Fast approximately-normal numbers (sum of four 16-bit uniforms, variance-corrected): good enough for weights.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() { return mix(state_ += 0x9e3779b97f4a7c15ull); }
    float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
    float normal() {
        const uint64_t r = next();
        const float s = float(r & 0xffff) + float((r >> 16) & 0xffff) + float((r >> 32) & 0xffff) + float(r >> 48);
        return (s - 2.0f * 65535.0f) * (1.0f / (65536.0f * 0.57735027f));  // mean 0, std ~1
    }

private:
    uint64_t state_;
};

// Values of one tensor, chosen so a random model still behaves like a trained one numerically: unit-variance
// activations, decays spread over fast and slow channels, routing that uses every expert.
std::vector<float> tensor_values(const TensorSpec& s, uint64_t seed) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    Rng rng(hash_name(s.name, seed));
    auto ends_with = [&](const char* suffix) {
        const std::string x(suffix);
        return s.name.size() >= x.size() && s.name.compare(s.name.size() - x.size(), x.size(), x) == 0;
    };
    if (ends_with("A_log")) {
        for (float& x : v) x = std::log(1.0f + 15.0f * rng.uniform());  // exp(A_log) in [1, 16]
    } else if (ends_with("dt_bias")) {
        for (float& x : v) {  // inverse softplus of dt drawn log-uniformly in [1e-3, 1e-1]
            const float dt = std::exp(std::log(1e-3f) + rng.uniform() * (std::log(1e-1f) - std::log(1e-3f)));
            x = dt + std::log(-std::expm1(-dt));
        }
    } else if (ends_with("norm.weight") || ends_with("layernorm.weight")) {
        for (float& x : v) x = 1.0f + 0.1f * rng.normal();
    } else if (ends_with("e_score_correction_bias")) {
        for (float& x : v) x = 0.05f * rng.normal();
    } else if (ends_with("conv1d.weight")) {
        const float scale = 1.0f / std::sqrt(float(s.shape.back()));
        for (float& x : v) x = scale * rng.normal();
    } else if (s.shape.size() == 2) {  // linear [out, in]
        const float scale = 1.0f / std::sqrt(float(s.shape[1]));
        for (float& x : v) x = scale * rng.normal();
    } else {
        for (float& x : v) x = 0.02f * rng.normal();
    }
    return v;
}

void append_encoded(std::vector<uint8_t>& out, const std::vector<float>& v, const std::string& dtype) {
    const size_t at = out.size();
    if (dtype == "F32") {
        out.resize(at + v.size() * 4);
        std::memcpy(out.data() + at, v.data(), v.size() * 4);
        return;
    }
    out.resize(at + v.size() * 2);
    uint16_t* p = reinterpret_cast<uint16_t*>(out.data() + at);
    for (size_t i = 0; i < v.size(); ++i) p[i] = dtype == "F16" ? ops::f32_to_f16(v[i]) : ops::f32_to_bf16(v[i]);
}

struct PlannedTensor {
    TensorSpec spec;
    std::string dtype;
    uint64_t bytes = 0;
    int32_t shard = 0;
};

std::string shard_name(int32_t i, int32_t n) {
    if (n == 1) return "model.safetensors";
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
    return buf;
}

}  // namespace

json preset_config(const std::string& name) {
    json c = {
        {"architectures", {"KimiLinearForCausalLM"}},
        {"model_type", "kimi_linear"},
        {"dtype", "bfloat16"},
        {"hidden_act", "silu"},
        {"first_k_dense_replace", 1},
        {"moe_layer_freq", 1},
        {"moe_renormalize", true},
        {"moe_router_activation_func", "sigmoid"},
        {"num_expert_group", 1},
        {"topk_group", 1},
        {"use_grouped_topk", true},
        {"num_shared_experts", 1},
        {"num_nextn_predict_layers", 0},
        {"mla_use_nope", true},
        {"q_lora_rank", nullptr},
        {"rms_norm_eps", 1e-5},
        {"rope_scaling", nullptr},
        {"rope_theta", 10000.0},
        {"routed_scaling_factor", 2.446},
        {"tie_word_embeddings", false},
        {"use_cache", true},
        {"model_max_length", 1048576},
    };
    auto set_vocab = [&](int64_t vocab) {  // special ids keep the real model's offsets from the top
        c["vocab_size"] = vocab;
        c["bos_token_id"] = vocab - 256;
        c["eos_token_id"] = vocab - 254;
        c["pad_token_id"] = vocab - 1;
    };
    if (name == "tiny") {
        set_vocab(384);
        c.update(json{{"hidden_size", 64}, {"num_hidden_layers", 4}, {"intermediate_size", 96},
                      {"head_dim", 32}, {"num_attention_heads", 2}, {"num_key_value_heads", 2},
                      {"kv_lora_rank", 32}, {"qk_nope_head_dim", 16}, {"qk_rope_head_dim", 8}, {"v_head_dim", 16},
                      {"num_experts", 8}, {"num_experts_per_token", 2}, {"moe_intermediate_size", 32},
                      {"linear_attn_config", {{"full_attn_layers", {4}}, {"kda_layers", {1, 2, 3}}, {"head_dim", 16},
                                              {"num_heads", 2}, {"short_conv_kernel_size", 4}}}});
    } else if (name == "demo") {
        set_vocab(4256);
        c.update(json{{"hidden_size", 256}, {"num_hidden_layers", 6}, {"intermediate_size", 512},
                      {"head_dim", 64}, {"num_attention_heads", 4}, {"num_key_value_heads", 4},
                      {"kv_lora_rank", 64}, {"qk_nope_head_dim", 32}, {"qk_rope_head_dim", 16}, {"v_head_dim", 32},
                      {"num_experts", 16}, {"num_experts_per_token", 4}, {"moe_intermediate_size", 128},
                      {"linear_attn_config", {{"full_attn_layers", {3, 6}}, {"kda_layers", {1, 2, 4, 5}},
                                              {"head_dim", 32}, {"num_heads", 4}, {"short_conv_kernel_size", 4}}}});
    } else if (name == "bench") {
        set_vocab(163840);
        c.update(json{{"hidden_size", 2304}, {"num_hidden_layers", 4}, {"intermediate_size", 9216},
                      {"head_dim", 72}, {"num_attention_heads", 32}, {"num_key_value_heads", 32},
                      {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128}, {"qk_rope_head_dim", 64},
                      {"v_head_dim", 128}, {"num_experts", 32}, {"num_experts_per_token", 8},
                      {"moe_intermediate_size", 1024},
                      {"linear_attn_config", {{"full_attn_layers", {4}}, {"kda_layers", {1, 2, 3}}, {"head_dim", 128},
                                              {"num_heads", 32}, {"short_conv_kernel_size", 4}}}});
    } else {
        throw std::runtime_error("unknown preset '" + name + "' (use tiny, demo or bench)");
    }
    return c;
}

uint64_t write_checkpoint(const std::filesystem::path& dir, const json& config, const GenOptions& opt) {
    namespace fs = std::filesystem;
    if (opt.weight_dtype != "BF16" && opt.weight_dtype != "F16" && opt.weight_dtype != "F32")
        throw std::runtime_error("weight dtype '" + opt.weight_dtype + "' is not BF16, F16 or F32");
    if (opt.shards < 1) throw std::runtime_error("the number of shards must be at least 1");
    const ModelConfig mc = parse_model_config(config, "generated config");

    // Plan: every tensor with its dtype and bytes, then shards of about equal size in tensor order.
    std::vector<PlannedTensor> plan;
    ModelWeights unused;
    uint64_t total = 0;
    for_each_tensor(mc, unused, [&](const TensorSpec& s, ops::Tensor&) {
        PlannedTensor t;
        t.spec = s;
        t.dtype = s.f32_in_release ? "F32" : opt.weight_dtype;
        int64_t n = 1;
        for (int64_t d : s.shape) n *= d;
        t.bytes = uint64_t(n) * (t.dtype == "F32" ? 4 : 2);
        total += t.bytes;
        plan.push_back(std::move(t));
    });
    const int32_t n_shards = std::min<int32_t>(opt.shards, int32_t(plan.size()));
    {
        uint64_t acc = 0;
        for (PlannedTensor& t : plan) {
            t.shard = std::min<int32_t>(n_shards - 1, int32_t(acc * uint64_t(n_shards) / std::max<uint64_t>(total, 1)));
            acc += t.bytes;
        }
    }

    fs::create_directories(dir);
    {
        std::ofstream cf(dir / "config.json");
        cf << config.dump(2) << "\n";
        if (!cf) throw std::runtime_error("cannot write " + (dir / "config.json").string());
    }
    json weight_map = json::object();
    uint64_t written = 0;
    for (int32_t s = 0; s < n_shards; ++s) {
        json header = json::object();
        header["__metadata__"] = {{"format", "pt"}};
        uint64_t offset = 0;
        for (const PlannedTensor& t : plan) {
            if (t.shard != s) continue;
            header[t.spec.name] = {{"dtype", t.dtype}, {"shape", t.spec.shape}, {"data_offsets", {offset, offset + t.bytes}}};
            offset += t.bytes;
            weight_map[t.spec.name] = shard_name(s, n_shards);
        }
        std::string text = header.dump();
        text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
        const fs::path path = dir / shard_name(s, n_shards);
        std::ofstream f(path, std::ios::binary);
        uint8_t len[8];
        for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
        f.write(reinterpret_cast<const char*>(len), 8);
        f.write(text.data(), std::streamsize(text.size()));
        // Header keys are sorted by nlohmann::json, but offsets follow plan order, which is what we write.
        std::vector<uint8_t> buf;
        for (const PlannedTensor& t : plan) {
            if (t.shard != s) continue;
            buf.clear();
            append_encoded(buf, tensor_values(t.spec, opt.seed), t.dtype);
            f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
            written += buf.size();
            if (opt.progress) opt.progress(written, total);
        }
        f.close();
        if (!f) throw std::runtime_error("cannot write " + path.string() + " (disk full?)");
        drop_written_pages(path);
    }
    if (n_shards > 1) {
        json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
        std::ofstream f(dir / "model.safetensors.index.json");
        f << index.dump(2) << "\n";
        if (!f) throw std::runtime_error("cannot write the index in " + dir.string());
    }
    return written;
}

}  // namespace halo::gen
