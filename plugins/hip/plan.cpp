// The HIP plugin's own memory for a step shape: the op workspace, sized as the largest op of any step up to the
// shape takes it (each op's takes below mirror its host code in ops/<op>/<op>.cpp, rounded as Workspace::take
// rounds). Steps then never allocate: the model reserves this once (reserve_internal).
#include <algorithm>

#include "plugins/hip/backend.h"
#include "plugins/hip/ops/kda/kda.h"
#include "plugins/hip/ops/mla/mla.h"
#include "plugins/hip/ops/moe/moe.h"

namespace halo::hip {

using namespace halo::ops;

namespace {

uint64_t take(uint64_t bytes) { return (std::max<uint64_t>(bytes, 1) + 255) / 256 * 256; }
uint64_t floats(int64_t n) { return take(uint64_t(n) * 4); }

// One op of T rows in a step of at most S sequences whose longest context is s.max_context.
uint64_t kda_bytes(const StepShape& s, int64_t T, int64_t S) {
    const int64_t H = s.kda_heads, K = s.kda_head_dim, D = H * K, R = K;  // f_a / g_a rank = head dim
    const int64_t C = std::clamp<int64_t>(s.kda_chunk, 1, kKdaMaxChunk);
    uint64_t b = floats(T * 3 * D) + 3 * floats(T * D) + floats(T * H) + floats(T * R);
    if (K <= kKdaMaxChunkedHeadDim) b += floats(T * H * (3 * K + C)) + take(sizeof(KdaChunk) * uint64_t(T / C + S));
    return b + 3 * take(sizeof(KdaRun) * uint64_t(S));
}

uint64_t mla_bytes(const StepShape& s, int64_t T, int64_t S) {
    const int64_t H = s.mla_heads, dq = s.mla_nope_dim + s.mla_rope_dim, r = s.mla_rank, width = r + s.mla_rope_dim;
    const int64_t ctx = s.max_context, pages = (ctx + s.page_size - 1) / std::max(1, s.page_size);
    const int64_t want = std::max<int64_t>(1, 256 / (T * mla_head_groups(H)));
    const int64_t splits = std::clamp<int64_t>(std::min<int64_t>((ctx + 255) / 256, want), 1, 64);
    return take(sizeof(MlaRow) * uint64_t(T)) + take(4 * uint64_t(S * pages)) + floats(T * H * dq) +
           floats(T * width) + floats(T * H * width) + floats(T * H * splits * (r + 2)) + floats(T * H * r) +
           floats(T * H * s.mla_v_dim);
}

uint64_t moe_bytes(const StepShape& s, int64_t T) {
    const int64_t E = s.experts, k = s.top_k, pairs = T * k, I = s.expert_inter, D = s.hidden;
    uint64_t b = floats(T * E) + 3 * take(4 * uint64_t(pairs)) + 2 * take(4 * uint64_t(E)) +
                 take(sizeof(MoeTile) * uint64_t(moe_max_tiles(pairs, E))) + take(4) +
                 3 * take(sizeof(WeightView) * uint64_t(E)) + floats(pairs * I) + floats(pairs * D);
    if (s.shared_inter > 0) b += 2 * floats(T * s.shared_inter) + floats(T * D);
    return b;
}

}  // namespace

uint64_t planned_workspace(const StepShape& s) {
    uint64_t worst = 0;
    for (int64_t T = 1; T <= s.max_rows; ++T) {
        const int64_t S = std::min<int64_t>(s.max_sequences, T);
        if (s.dense_layers > 0) worst = std::max(worst, 2 * floats(T * s.dense_inter));
        if (s.kda_layers > 0) worst = std::max(worst, kda_bytes(s, T, S));
        if (s.mla_layers > 0) worst = std::max(worst, mla_bytes(s, T, S));
        if (s.moe_layers > 0) worst = std::max(worst, moe_bytes(s, T));
    }
    return worst;
}

}  // namespace halo::hip
