// MoE kernels. Routing runs one thread per row (E scores, top_k scans; small next to the experts). The pairs (row,
// chosen expert) are then grouped by expert on the device, in tiles of up to kMoeTileRows pairs, so the expert
// products read each weight element once per tile, like the matrix product (linear.hip): one warp per output column,
// lanes striding over the reduction, any weight format through weight_at. Each pair's expert output has its own row,
// and the weighted sum per row adds them in slot order, so results do not depend on scheduling.
#include "plugins/hip/ops/moe/moe.h"

#include <algorithm>

namespace halo::hip {

namespace {

constexpr int kThreads = 256;      // threads per block of the expert products and the combine
constexpr int kRouteThreads = 64;  // rows per block of the routing
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ float selection(const float* s, const unsigned char* bias, uint32_t bias_kind, int e) {
    return s[e] + (bias ? load_float(bias, bias_kind, e) : 0.0f);
}

// True when (v, i) ranks after (prev, prev_i) in the order "higher value first, then lower index", which is the
// reference's stable descending sort; prev_i < 0 means nothing was taken yet.
__device__ __forceinline__ bool ranks_after(float v, int i, float prev, int prev_i) {
    return prev_i < 0 || v < prev || (v == prev && i > prev_i);
}

// Sum of the two best selection scores of group g (experts [g * per, (g + 1) * per)); one expert: the best alone.
__device__ float group_score(const float* s, const unsigned char* bias, uint32_t bias_kind, int g, int per) {
    float m1 = -INFINITY, m2 = -INFINITY;
    for (int e = g * per; e < (g + 1) * per; ++e) {
        const float v = selection(s, bias, bias_kind, e);
        if (v > m1) {
            m2 = m1;
            m1 = v;
        } else if (v > m2) {
            m2 = v;
        }
    }
    return per > 1 ? m1 + m2 : m1;
}

__global__ void __launch_bounds__(kRouteThreads)
    moe_route_kernel(float* logits, int64_t rows, const unsigned char* bias, uint32_t bias_kind, MoeRouting cfg,
                     int32_t* ids, float* weights, int32_t* out_ids, float* out_weights) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const int E = cfg.experts, k = cfg.top_k;
    float* s = logits + r * E;  // [E]: logits, then scores
    for (int e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + expf(-s[e]));

    // Groups: keep the topk_groups best (bit g of `kept`); experts past n_groups * per belong to none.
    uint64_t kept = 0;
    int per = E;
    if (cfg.n_groups > 1) {
        per = E / cfg.n_groups;
        float prev = 0.0f;
        int prev_g = -1;
        for (int j = 0; j < cfg.topk_groups; ++j) {
            int best = -1;
            float best_v = 0.0f;
            for (int g = 0; g < cfg.n_groups; ++g) {
                const float v = group_score(s, bias, bias_kind, g, per);
                if (!ranks_after(v, g, prev, prev_g)) continue;
                if (best < 0 || v > best_v) {
                    best = g;
                    best_v = v;
                }
            }
            kept |= uint64_t(1) << best;
            prev = best_v;
            prev_g = best;
        }
    }

    // Top-k by selection score, best first; each scan takes the best expert ranking after the previous one.
    float prev = 0.0f, sum = 0.0f;
    int prev_e = -1;
    for (int j = 0; j < k; ++j) {
        int best = -1;
        float best_v = 0.0f;
        for (int e = 0; e < E; ++e) {
            if (cfg.n_groups > 1 && (e >= cfg.n_groups * per || !((kept >> (e / per)) & 1u))) continue;
            const float v = selection(s, bias, bias_kind, e);
            if (!ranks_after(v, e, prev, prev_e)) continue;
            if (best < 0 || v > best_v) {
                best = e;
                best_v = v;
            }
        }
        const float w = cfg.biased ? best_v : s[best];
        ids[r * k + j] = best;
        weights[r * k + j] = w;
        sum += w;
        prev = best_v;
        prev_e = best;
    }
    for (int j = 0; j < k; ++j) {
        float w = weights[r * k + j];
        if (cfg.renormalize) w /= sum + 1e-20f;
        w *= cfg.routed_scale;
        weights[r * k + j] = w;
        if (out_ids) out_ids[r * k + j] = ids[r * k + j];
        if (out_weights) out_weights[r * k + j] = w;
    }
}

// One block: counts per expert, starts (prefix sums) and the tile list by one thread, then each expert's pairs in
// pair order.
__global__ void __launch_bounds__(kThreads)
    moe_sort_kernel(const int32_t* ids, int64_t pairs, int32_t experts, int32_t* counts, int32_t* starts,
                    int32_t* order, MoeTile* tiles, int32_t* tile_count) {
    const int t = int(threadIdx.x);
    for (int e = t; e < experts; e += int(blockDim.x)) {
        int32_t n = 0;
        for (int64_t p = 0; p < pairs; ++p) n += ids[p] == e ? 1 : 0;
        counts[e] = n;
    }
    __syncthreads();
    if (t == 0) {
        int32_t start = 0, n_tiles = 0;
        for (int e = 0; e < experts; ++e) {
            starts[e] = start;
            for (int32_t i = 0; i < counts[e]; i += kMoeTileRows) {
                MoeTile tile;
                tile.expert = e;
                tile.start = start + i;
                tile.count = counts[e] - i < kMoeTileRows ? counts[e] - i : kMoeTileRows;
                tiles[n_tiles++] = tile;
            }
            start += counts[e];
        }
        *tile_count = n_tiles;
    }
    __syncthreads();
    for (int e = t; e < experts; e += int(blockDim.x)) {
        int32_t at = starts[e];
        for (int64_t p = 0; p < pairs; ++p)
            if (ids[p] == e) order[at++] = int32_t(p);
    }
}

// Block (x, y): warps over columns n of I, tiles y, y + gridDim.y, ...
__global__ void __launch_bounds__(kThreads)
    moe_up_kernel(const float* __restrict__ x, int64_t D, const WeightView* w1, const WeightView* w3, int64_t I,
                  int32_t top_k, const int32_t* order, const MoeTile* tiles, const int32_t* tile_count,
                  float* __restrict__ h) {
    const int warps = int(blockDim.x) / warpSize;
    const int64_t n = int64_t(blockIdx.x) * warps + int64_t(threadIdx.x) / warpSize;
    const int lane = int(threadIdx.x) % warpSize;
    if (n >= I) return;  // whole warps leave together
    const int32_t n_tiles = *tile_count;
    for (int32_t ti = int32_t(blockIdx.y); ti < n_tiles; ti += int32_t(gridDim.y)) {
        const MoeTile tile = tiles[ti];
        const WeightView gate = w1[tile.expert], up = w3[tile.expert];
        int32_t pair[kMoeTileRows];
        const float* xr[kMoeTileRows];
        float ag[kMoeTileRows], au[kMoeTileRows];
        for (int i = 0; i < tile.count; ++i) {
            pair[i] = order[tile.start + i];
            xr[i] = x + int64_t(pair[i] / top_k) * D;
            ag[i] = 0.0f;
            au[i] = 0.0f;
        }
        for (int64_t c = lane; c < D; c += warpSize) {
            const float g = weight_at(gate, n, c), u = weight_at(up, n, c);
            for (int i = 0; i < tile.count; ++i) {
                ag[i] += g * xr[i][c];
                au[i] += u * xr[i][c];
            }
        }
        for (int i = 0; i < tile.count; ++i) {
            const float g = warp_sum(ag[i]), u = warp_sum(au[i]);
            if (lane == 0) h[int64_t(pair[i]) * I + n] = g / (1.0f + expf(-g)) * u;
        }
    }
}

__global__ void __launch_bounds__(kThreads)
    moe_down_kernel(const float* __restrict__ h, int64_t I, const WeightView* w2, int64_t D, const int32_t* order,
                    const MoeTile* tiles, const int32_t* tile_count, float* __restrict__ y) {
    const int warps = int(blockDim.x) / warpSize;
    const int64_t n = int64_t(blockIdx.x) * warps + int64_t(threadIdx.x) / warpSize;
    const int lane = int(threadIdx.x) % warpSize;
    if (n >= D) return;
    const int32_t n_tiles = *tile_count;
    for (int32_t ti = int32_t(blockIdx.y); ti < n_tiles; ti += int32_t(gridDim.y)) {
        const MoeTile tile = tiles[ti];
        const WeightView down = w2[tile.expert];
        int32_t pair[kMoeTileRows];
        float acc[kMoeTileRows];
        for (int i = 0; i < tile.count; ++i) {
            pair[i] = order[tile.start + i];
            acc[i] = 0.0f;
        }
        for (int64_t c = lane; c < I; c += warpSize) {
            const float w = weight_at(down, n, c);
            for (int i = 0; i < tile.count; ++i) acc[i] += w * h[int64_t(pair[i]) * I + c];
        }
        for (int i = 0; i < tile.count; ++i) {
            const float s = warp_sum(acc[i]);
            if (lane == 0) y[int64_t(pair[i]) * D + n] = s;
        }
    }
}

__global__ void moe_combine_kernel(const float* y, const float* weights, int32_t top_k, int64_t D,
                                   const float* shared, float* out) {
    const int64_t r = blockIdx.y;
    for (int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; d < D; d += int64_t(gridDim.x) * blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < top_k; ++j) acc += weights[r * top_k + j] * y[(r * top_k + j) * D + d];
        if (shared) acc += shared[r * D + d];
        out[r * D + d] = acc;
    }
}

unsigned tile_grid_y(int64_t max_tiles) { return unsigned(std::min<int64_t>(std::max<int64_t>(max_tiles, 1), kMaxGridY)); }

}  // namespace

void launch_moe_route(const Launch& l, float* logits, int64_t rows, const unsigned char* bias, uint32_t bias_kind,
                      const MoeRouting& routing, int32_t* ids, float* weights, int32_t* out_ids, float* out_weights) {
    if (rows <= 0) return;
    const unsigned blocks = unsigned((rows + kRouteThreads - 1) / kRouteThreads);
    hipLaunchKernelGGL(moe_route_kernel, dim3(blocks), dim3(kRouteThreads), 0, l.stream, logits, rows, bias, bias_kind,
                       routing, ids, weights, out_ids, out_weights);
    Execution::check_launch("moe_route");
}

void launch_moe_sort(const Launch& l, const int32_t* ids, int64_t pairs, int32_t experts, int32_t* counts,
                     int32_t* starts, int32_t* order, MoeTile* tiles, int32_t* tile_count) {
    hipLaunchKernelGGL(moe_sort_kernel, dim3(1), dim3(kThreads), 0, l.stream, ids, pairs, experts, counts, starts, order,
                       tiles, tile_count);
    Execution::check_launch("moe_sort");
}

void launch_moe_up(const Launch& l, const float* x, int64_t D, const WeightView* w1, const WeightView* w3, int64_t I,
                   int32_t top_k, const int32_t* order, const MoeTile* tiles, const int32_t* tile_count,
                   int64_t max_tiles, float* h) {
    if (I <= 0) return;
    const unsigned per_block = unsigned(kThreads / l.warp);
    const dim3 grid(unsigned((I + per_block - 1) / per_block), tile_grid_y(max_tiles));
    hipLaunchKernelGGL(moe_up_kernel, grid, dim3(kThreads), 0, l.stream, x, D, w1, w3, I, top_k, order, tiles,
                       tile_count, h);
    Execution::check_launch("moe_up");
}

void launch_moe_down(const Launch& l, const float* h, int64_t I, const WeightView* w2, int64_t D, const int32_t* order,
                     const MoeTile* tiles, const int32_t* tile_count, int64_t max_tiles, float* y) {
    if (D <= 0) return;
    const unsigned per_block = unsigned(kThreads / l.warp);
    const dim3 grid(unsigned((D + per_block - 1) / per_block), tile_grid_y(max_tiles));
    hipLaunchKernelGGL(moe_down_kernel, grid, dim3(kThreads), 0, l.stream, h, I, w2, D, order, tiles, tile_count, y);
    Execution::check_launch("moe_down");
}

void launch_moe_combine(const Launch& l, const float* y, const float* weights, int64_t rows, int32_t top_k, int64_t D,
                        const float* shared, float* out) {
    if (rows <= 0 || D <= 0) return;
    const unsigned x = unsigned(std::min<int64_t>((D + kThreads - 1) / kThreads, 64));
    hipLaunchKernelGGL(moe_combine_kernel, dim3(x, unsigned(rows)), dim3(kThreads), 0, l.stream, y, weights, top_k, D,
                       shared, out);
    Execution::check_launch("moe_combine");
}

}  // namespace halo::hip
