// Kimi Delta Attention: one whole KDA mixer (projections, short convs, gates, delta-rule recurrence, gated
// RMSNorm, output projection). The exact math is in ops/reference/kda.cpp.
#pragma once

#include "ops/tensor.h"

namespace halo::ops {

struct KdaWeights {
    Tensor q_proj, k_proj, v_proj;  // [H*K, hidden]
    Tensor q_conv, k_conv, v_conv;  // [H*K, 1, W] depthwise causal conv; tap W-1 multiplies the current token
    Tensor f_a, f_b;                // decay gate, low rank: [R, hidden], [H*K, R]
    Tensor dt_bias;                 // [H*K] F32, added before softplus
    Tensor a_log;                   // [H] F32 (the checkpoint's [1, 1, H, 1] flattened)
    Tensor b_proj;                  // [H, hidden] beta logits
    Tensor g_a, g_b;                // output gate, low rank: [R, hidden], [H*K, R]
    Tensor o_norm;                  // [K] gated RMSNorm weight shared by all heads
    Tensor o_proj;                  // [hidden, H*K]
};

// How the recurrence is evaluated. Both forms compute the same function; tests force each.
enum class KdaForm : uint32_t {
    automatic = 0,  // the plugin chooses (chunked for long runs, recurrent for short ones)
    recurrent = 1,  // token by token
    chunked = 2,    // chunkwise-parallel with chunk_size tokens per chunk
};

struct KdaParams {
    KdaWeights w;
    int32_t n_heads = 0;      // H
    int32_t head_dim = 0;     // K (= V, the value head width)
    int32_t conv_width = 4;   // W
    float norm_eps = 1e-5f;   // gated RMSNorm eps (rms_norm_eps)
    float l2_eps = 1e-6f;     // q/k L2 norm: x / sqrt(sum x^2 + l2_eps)
    KdaForm form = KdaForm::automatic;
    int32_t chunk_size = 64;  // tokens per chunk in the chunked form

    Tensor x;           // [rows, hidden] F32, the layer input after input_layernorm
    Tensor out;         // [rows, hidden] F32, the mixer output (before the residual add); must not alias x
    Tensor state;       // [slots, H, K, K] F32 recurrent state S[h][key][value]; read and updated in place
    Tensor conv_state;  // [slots, 3, W-1, H*K] F32: last W-1 pre-conv q, k, v projections, oldest first
};

}  // namespace halo::ops
