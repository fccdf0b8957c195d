#include "core/weights.h"

namespace halo {

void for_each_tensor(const ModelConfig& c, ModelWeights& w,
                     const std::function<void(const TensorSpec&, ops::Tensor&)>& fn) {
    auto visit = [&](const std::string& name, std::vector<int64_t> shape, ops::Tensor& slot, int32_t layer,
                     bool f32 = false) { fn(TensorSpec{name, std::move(shape), f32, layer}, slot); };
    const int64_t D = c.hidden_size;
    w.layers.resize(static_cast<size_t>(c.num_hidden_layers));

    visit("model.embed_tokens.weight", {c.vocab_size, D}, w.embed, -1);
    for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
        LayerWeights& L = w.layers[size_t(i)];
        const std::string p = "model.layers." + std::to_string(i) + ".";
        visit(p + "input_layernorm.weight", {D}, L.input_norm, i);
        visit(p + "post_attention_layernorm.weight", {D}, L.post_norm, i);
        const std::string a = p + "self_attn.";
        if (c.mixer[size_t(i)] == MixerKind::kda) {
            const int64_t H = c.kda_num_heads, K = c.kda_head_dim, HK = H * K, W = c.short_conv_kernel_size;
            ops::KdaWeights& k = L.kda;
            visit(a + "q_proj.weight", {HK, D}, k.q_proj, i);
            visit(a + "k_proj.weight", {HK, D}, k.k_proj, i);
            visit(a + "v_proj.weight", {HK, D}, k.v_proj, i);
            visit(a + "q_conv1d.weight", {HK, 1, W}, k.q_conv, i);
            visit(a + "k_conv1d.weight", {HK, 1, W}, k.k_conv, i);
            visit(a + "v_conv1d.weight", {HK, 1, W}, k.v_conv, i);
            visit(a + "f_a_proj.weight", {K, D}, k.f_a, i);
            visit(a + "f_b_proj.weight", {HK, K}, k.f_b, i);
            visit(a + "dt_bias", {HK}, k.dt_bias, i, true);
            visit(a + "A_log", {1, 1, H, 1}, k.a_log, i, true);
            visit(a + "b_proj.weight", {H, D}, k.b_proj, i);
            visit(a + "g_a_proj.weight", {K, D}, k.g_a, i);
            visit(a + "g_b_proj.weight", {HK, K}, k.g_b, i);
            visit(a + "o_norm.weight", {K}, k.o_norm, i);
            visit(a + "o_proj.weight", {D, HK}, k.o_proj, i);
        } else {
            const int64_t H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
                          dv = c.v_head_dim, r = c.kv_lora_rank;
            ops::MlaWeights& m = L.mla;
            visit(a + "q_proj.weight", {H * (dn + dr), D}, m.q_proj, i);
            visit(a + "kv_a_proj_with_mqa.weight", {r + dr, D}, m.kv_a, i);
            visit(a + "kv_a_layernorm.weight", {r}, m.kv_a_norm, i);
            visit(a + "kv_b_proj.weight", {H * (dn + dv), r}, m.kv_b, i);
            visit(a + "o_proj.weight", {D, H * dv}, m.o_proj, i);
        }
        if (c.ffn[size_t(i)] == FfnKind::dense) {
            const int64_t I = c.intermediate_size;
            visit(p + "mlp.gate_proj.weight", {I, D}, L.mlp.gate, i);
            visit(p + "mlp.up_proj.weight", {I, D}, L.mlp.up, i);
            visit(p + "mlp.down_proj.weight", {D, I}, L.mlp.down, i);
        } else {
            const int64_t E = c.num_experts, I = c.moe_intermediate_size;
            const std::string m = p + "block_sparse_moe.";
            MoeWeights& moe = L.moe;
            visit(m + "gate.weight", {E, D}, moe.router, i);
            visit(m + "gate.e_score_correction_bias", {E}, moe.router_bias, i);
            moe.w1.resize(static_cast<size_t>(E));
            moe.w2.resize(static_cast<size_t>(E));
            moe.w3.resize(static_cast<size_t>(E));
            for (int64_t e = 0; e < E; ++e) {
                const std::string x = m + "experts." + std::to_string(e) + ".";
                visit(x + "w1.weight", {I, D}, moe.w1[size_t(e)], i);
                visit(x + "w2.weight", {D, I}, moe.w2[size_t(e)], i);
                visit(x + "w3.weight", {I, D}, moe.w3[size_t(e)], i);
            }
            if (c.num_shared_experts > 0) {
                const int64_t Is = I * c.num_shared_experts;
                visit(m + "shared_experts.gate_proj.weight", {Is, D}, moe.shared.gate, i);
                visit(m + "shared_experts.up_proj.weight", {Is, D}, moe.shared.up, i);
                visit(m + "shared_experts.down_proj.weight", {D, Is}, moe.shared.down, i);
            }
        }
    }
    visit("model.norm.weight", {D}, w.final_norm, -1);
    if (!c.tie_word_embeddings) visit("lm_head.weight", {c.vocab_size, D}, w.lm_head, -1);
}

int64_t count_parameters(const ModelConfig& config) {
    ModelWeights scratch;
    int64_t n = 0;
    for_each_tensor(config, scratch, [&](const TensorSpec& s, ops::Tensor&) {
        int64_t e = 1;
        for (int64_t d : s.shape) e *= d;
        n += e;
    });
    return n;
}

}  // namespace halo
