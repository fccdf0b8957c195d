// Multi-head latent attention as Kimi-Linear uses it: no rotary embedding (NoPE), no q low-rank, a latent cache of
// kv_lora_rank + qk_rope_head_dim values per token. The exact math is in ops/reference/mla.cpp.
#pragma once

#include "ops/tensor.h"

namespace halo::ops {

struct MlaWeights {
    Tensor q_proj;     // [H*(dn+dr), hidden]; head h rows: dn nope rows then dr rope rows
    Tensor kv_a;       // [r+dr, hidden]; rows 0..r-1 latent c, rows r.. shared k_rot
    Tensor kv_a_norm;  // [r] RMSNorm weight on c
    Tensor kv_b;       // [H*(dn+dv), r]; head h rows: dn k_nope rows then dv v rows
    Tensor o_proj;     // [hidden, H*dv]
};

enum class MlaForm : uint32_t {
    automatic = 0,  // the plugin chooses
    expanded = 1,   // expand cached latents to per-head K and V (the prefill form)
    absorbed = 2,   // fold W_UK into q and W_UV after the context (the decode form)
};

struct MlaParams {
    MlaWeights w;
    int32_t n_heads = 0;        // H
    int32_t qk_nope_dim = 0;    // dn
    int32_t qk_rope_dim = 0;    // dr
    int32_t v_dim = 0;          // dv
    int32_t kv_lora_rank = 0;   // r
    float kv_norm_eps = 1e-5f;  // kv_a_layernorm eps
    float softmax_scale = 0;    // (dn+dr)^-0.5 for Kimi-Linear
    MlaForm form = MlaForm::automatic;

    Tensor x;      // [rows, hidden] F32 layer input after input_layernorm
    Tensor out;    // [rows, hidden] F32 mixer output; must not alias x
    Tensor cache;  // [pages, page_size, r+dr] F32/F16/BF16: normalised latent c then k_rot, per token
    int32_t page_size = 0;
};

}  // namespace halo::ops
