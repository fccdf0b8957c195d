// The model's weights: per-layer structs of tensor views, and the one tensor list (for_each_tensor) that loading,
// validation, byte counting, planning and the checkpoint generator all share.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "ops/backend.h"

namespace halo {

struct DenseMlpWeights {
    ops::Tensor gate, up;  // [I, hidden]
    ops::Tensor down;      // [hidden, I]
};

struct MoeWeights {
    ops::Tensor router;       // [E, hidden]
    ops::Tensor router_bias;  // [E] e_score_correction_bias
    std::vector<ops::Tensor> w1, w3;  // E x [I, hidden]: expert gate and up projections
    std::vector<ops::Tensor> w2;      // E x [hidden, I]: expert down projections
    DenseMlpWeights shared;           // [Is, hidden] / [hidden, Is]; absent without shared experts
};

struct LayerWeights {
    ops::Tensor input_norm;  // [hidden]
    ops::Tensor post_norm;   // [hidden]
    ops::KdaWeights kda;     // when the mixer is KDA
    ops::MlaWeights mla;     // when the mixer is MLA
    DenseMlpWeights mlp;     // when the FFN is dense
    MoeWeights moe;          // when the FFN is MoE
};

struct ModelWeights {
    ops::Tensor embed;       // [vocab, hidden]
    ops::Tensor final_norm;  // [hidden]
    ops::Tensor lm_head;     // [vocab, hidden]; the embedding itself when tie_word_embeddings
    std::vector<LayerWeights> layers;
};

// One tensor the checkpoint must hold.
struct TensorSpec {
    std::string name;             // checkpoint name, e.g. "model.layers.3.self_attn.kv_b_proj.weight"
    std::vector<int64_t> shape;   // checkpoint shape
    bool f32_in_release = false;  // stored as F32 in the original release (A_log, dt_bias); others BF16
    int32_t layer = -1;           // checkpoint layer, or -1 for global tensors
};

// Calls fn for every tensor of the model in a fixed order, with the slot its view is stored in.
void for_each_tensor(const ModelConfig& config, ModelWeights& weights,
                     const std::function<void(const TensorSpec&, ops::Tensor&)>& fn);

// Total parameter count (elements), from the tensor list.
int64_t count_parameters(const ModelConfig& config);

}  // namespace halo
