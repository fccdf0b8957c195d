// The KDA kernels' launches (kda.hip: gates, short convolutions, q/k norms, token-by-token recurrence, gated norm;
// kda_chunked.hip: the chunkwise-parallel recurrence). Activations live in the op's workspace, rows of the step:
//   act [T, 3D] (q | k | v per row), gate [T, D], beta [T, H], ogate [T, D], o [T, D]   (D = H * K)
// and the chunked form's per-(row, head) record of stride floats: G [K] | Wm [K] | U [K] | Aqk [C].
#pragma once

#include <cstdint>

#include "plugins/hip/exec/execution.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

// One sequence's run of rows, as the kernels read it (the device copy of a SeqRun).
struct KdaRun {
    int32_t first_row = 0;
    int32_t n_tokens = 0;
    int32_t slot = 0;
};

// One chunk of a run: rows [first_row, first_row + n_tokens).
struct KdaChunk {
    int32_t first_row = 0;
    int32_t n_tokens = 0;
};

// Sizes every KDA kernel takes.
struct KdaDims {
    int32_t rows = 0;      // T
    int32_t heads = 0;     // H
    int32_t head_dim = 0;  // K (= V)
    int32_t conv_w = 0;    // W
    int32_t chunk = 0;     // C (chunked form)
    int32_t stride = 0;    // floats per (row, head) of the chunk record: 3K + C
    float q_scale = 0;     // K^-0.5
    float l2_eps = 0;
    float norm_eps = 0;
    __host__ __device__ int32_t width() const { return heads * head_dim; }
};

constexpr int kKdaMaxHeadDim = 256;        // the recurrent kernel's state columns in registers
constexpr int kKdaMaxConvWidth = 16;       // conv taps held in registers
constexpr int kKdaMaxChunk = 64;           // chunk rows of the chunked form's shared matrix
constexpr int kKdaMaxChunkedHeadDim = 128; // state block in shared memory of the chunked form

// gate[t, c] <- -exp(a_log[c / K]) * softplus(gate[t, c] + dt_bias[c]); beta[t, h] <- sigmoid(beta[t, h]).
// dt_bias and a_log are [1, D] and [1, H] views.
void launch_kda_gate(const Launch& l, const KdaDims& d, float* gate, float* beta, const WeightView& dt_bias,
                     const WeightView& a_log);

// Short causal convolutions + SiLU in place over act (pre-conv q | k | v in, activations out), reading and updating
// conv_state [slots, 3, W-1, D] (oldest first). convs are [D, W] views. runs is a device array of n_runs.
void launch_kda_conv(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, float* act,
                     float* conv_state, const WeightView& q_conv, const WeightView& k_conv, const WeightView& v_conv);

// q_h <- q_h / sqrt(|q_h|^2 + l2_eps) * K^-0.5 and k_h <- k_h / sqrt(|k_h|^2 + l2_eps), in place.
void launch_kda_l2norm(const Launch& l, const KdaDims& d, float* act);

// The recurrence token by token for the runs in the device array runs: o [T, D], state [slots, H, K, K] in place.
void launch_kda_recurrent(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, const float* act,
                          const float* gate, const float* beta, float* state, float* o);

// The chunkwise-parallel recurrence: part 1 per chunk (all in parallel) into the chunk record, part 2 per run.
void launch_kda_chunk_prep(const Launch& l, const KdaDims& d, const KdaChunk* chunks, int32_t n_chunks,
                           const float* act, const float* gate, const float* beta, float* record);
void launch_kda_chunk_state(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, const float* act,
                            const float* record, float* state, float* o);

// o_h <- o_h * rsqrt(mean(o_h^2) + norm_eps) * o_norm * sigmoid(ogate_h), in place; o_norm is a [1, K] view.
void launch_kda_out_norm(const Launch& l, const KdaDims& d, float* o, const float* ogate, const WeightView& o_norm);

}  // namespace halo::hip
