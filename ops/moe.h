// Mixture of experts block: FP32 sigmoid router, selection by score + correction bias (optionally grouped),
// top-k, renormalisation, routed scaling, SwiGLU experts and an optional shared expert.
// The exact math is in ops/reference/moe.cpp.
#pragma once

#include "ops/batch.h"
#include "ops/tensor.h"

namespace halo::ops {

// Which scores become the mixing weights of the chosen experts. Selection is the same in both.
enum class MoeWeighting : uint32_t {
    unbiased = 0,  // w = sigmoid(logit) (vLLM, SGLang, llama.cpp, DeepSeek-V3's intent); the default
    biased = 1,    // w = sigmoid(logit) + correction bias (what the HF modeling code computes by aliasing)
};

struct MoeParams {
    Tensor x;            // [rows, D] F32 (after post_attention_layernorm)
    Tensor out;          // [rows, D] F32; must not alias x
    Tensor router;       // [E, D] gate weight; logits are computed in F32
    Tensor router_bias;  // [E] e_score_correction_bias; optional (absent = 0)
    const Tensor* w1 = nullptr;  // E tensors [I, D]: expert gate projections (host array, valid during the call)
    const Tensor* w3 = nullptr;  // E tensors [I, D]: expert up projections
    const Tensor* w2 = nullptr;  // E tensors [D, I]: expert down projections
    int32_t n_experts = 0;       // E
    int32_t top_k = 0;
    int32_t n_groups = 1;        // expert groups; groups are ranked by the sum of their two best selection scores
    int32_t topk_groups = 1;     // groups kept
    bool renormalize = true;     // divide the chosen weights by (their sum + 1e-20)
    float routed_scale = 1.0f;   // multiplies the routed part only
    MoeWeighting weighting = MoeWeighting::unbiased;
    Tensor shared_gate, shared_up, shared_down;  // optional shared expert [Is, D], [Is, D], [D, Is], added unscaled
    Tensor topk_ids;      // optional output [rows, top_k] I32: chosen experts, best selection score first
    Tensor topk_weights;  // optional output [rows, top_k] F32: their final weights (after renorm and scale)
    const SeqBatch* batch = nullptr;  // the step's runs, when the rows are a forward step's (see MlpParams::batch)
};

}  // namespace halo::ops
