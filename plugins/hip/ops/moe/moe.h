// The MoE kernels' launches (moe.hip): routing, grouping the chosen (row, expert) pairs by expert, the experts'
// SwiGLU products through per-expert weight tables on the device, and the weighted sum per row. The chosen experts
// stay on the device: nothing here waits for the stream.
#pragma once

#include "plugins/hip/exec/execution.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

constexpr int kMoeTileRows = 8;  // (row, expert) pairs of one expert per tile of the expert products

// How each row picks its experts (ops/moe.h): sigmoid scores, selection by score + bias, groups, top-k, weights.
struct MoeRouting {
    int32_t experts = 0;      // E
    int32_t top_k = 0;
    int32_t n_groups = 1;     // <= 64
    int32_t topk_groups = 1;
    int32_t renormalize = 1;
    int32_t biased = 0;       // weights are score + bias instead of score
    float routed_scale = 1.0f;
};

// A run of pairs of one expert: pairs order[start, start + count), count <= kMoeTileRows.
struct MoeTile {
    int32_t expert = 0, start = 0, count = 0;
};

// The most tiles `pairs` pairs of `experts` experts can need: full tiles, one partial tile per expert used, and
// never more tiles than pairs (decode: top_k tiles, not E).
inline int64_t moe_max_tiles(int64_t pairs, int64_t experts) {
    const int64_t used = experts < pairs ? experts : pairs;
    const int64_t tiles = pairs / kMoeTileRows + used;
    return tiles < pairs ? tiles : pairs;
}

// logits [rows, E] (overwritten with the sigmoid scores) -> ids, weights [rows, top_k] (pair p = r * top_k + j, best
// selection score first), also written to out_ids / out_weights when those are not null. bias: [E] of bias_kind
// (F32/F16/BF16) or null.
void launch_moe_route(const Launch& l, float* logits, int64_t rows, const unsigned char* bias, uint32_t bias_kind,
                      const MoeRouting& routing, int32_t* ids, float* weights, int32_t* out_ids, float* out_weights);

// Groups the pairs by expert, in pair order within an expert: order [pairs], tiles [moe_max_tiles], tile_count [1];
// counts and starts are scratch of `experts` ints each.
void launch_moe_sort(const Launch& l, const int32_t* ids, int64_t pairs, int32_t experts, int32_t* counts,
                     int32_t* starts, int32_t* order, MoeTile* tiles, int32_t* tile_count);

// h[p, :] = silu(W1_e x[p / top_k]) * (W3_e x[p / top_k]) for every pair p of expert e, over the tiles; w1, w3 are
// device tables of E weight views [I, D]; x [rows, D], h [pairs, I].
void launch_moe_up(const Launch& l, const float* x, int64_t D, const WeightView* w1, const WeightView* w3, int64_t I,
                   int32_t top_k, const int32_t* order, const MoeTile* tiles, const int32_t* tile_count,
                   int64_t max_tiles, float* h);

// y[p, :] = W2_e h[p, :] for every pair p of expert e; w2 a device table of E weight views [D, I]; y [pairs, D].
void launch_moe_down(const Launch& l, const float* h, int64_t I, const WeightView* w2, int64_t D, const int32_t* order,
                     const MoeTile* tiles, const int32_t* tile_count, int64_t max_tiles, float* y);

// out[r, :] = sum_j weights[r, j] * y[r * top_k + j, :] (j in order) + shared[r, :] (shared may be null).
void launch_moe_combine(const Launch& l, const float* y, const float* weights, int64_t rows, int32_t top_k, int64_t D,
                        const float* shared, float* out);

}  // namespace halo::hip
