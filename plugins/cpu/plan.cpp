// The CPU plugin's own memory for a step shape: the arena, sized by the largest op of any step the core may run,
// and the per-thread packing scratch. Every figure comes from the sizing functions the ops allocate with.
#include <algorithm>

#include "plugins/cpu/context.h"
#include "plugins/cpu/mla_internal.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

// A run of n tokens that ends at the largest context (where the absorbed form splits its pages the most).
SeqRun run_ending_at(int64_t n, int64_t context) {
    SeqRun r{};
    r.n_tokens = int32_t(n);
    r.pos = std::max<int64_t>(0, context - n);
    return r;
}

// The largest arena demand of the MLA op over the ways a step of up to max_rows rows splits into at most
// max_sequences runs. Its temporaries grow linearly with the rows of each form, plus a fixed part per expanded run
// and one for the absorbed runs together, so the largest demand is at a corner: k expanded runs sharing the rows
// the absorbed runs leave (as many, or as few, as the absorbed form may take), every run ending at the largest
// context.
int64_t mla_worst(const StepShape& s, int threads) {
    const MlaDims d(s);
    const int64_t R = s.max_rows, S = std::min<int64_t>(s.max_sequences, R), ctx = s.max_context;
    int64_t n_e = R + 1;  // the shortest run that takes the expanded form (R + 1: none does)
    for (int64_t n = 1; n <= R; ++n)
        if (use_expanded(s.mla_form, d, n)) {
            n_e = n;
            break;
        }
    const int64_t n_a = n_e - 1;  // the longest run that takes the absorbed form
    int64_t worst = 0;
    // k_e expanded runs sharing x rows, k_a absorbed runs sharing y rows, each as evenly as it goes.
    auto consider = [&](int64_t k_e, int64_t x, int64_t k_a, int64_t y) {
        std::vector<SeqRun> runs;
        for (int64_t i = 0; i < k_e; ++i) runs.push_back(run_ending_at(x / k_e + (i < x % k_e ? 1 : 0), ctx));
        for (int64_t i = 0; i < k_a; ++i) runs.push_back(run_ending_at(y / k_a + (i < y % k_a ? 1 : 0), ctx));
        worst = std::max(worst, mla_arena(s, runs, threads));
    };
    for (int64_t k_e = 0; k_e <= S && k_e * n_e <= R; ++k_e) {
        const int64_t k_a = std::min(S - k_e, R - k_e * n_e);  // absorbed runs that can still get a row each
        const int64_t y_max = k_a > 0 ? std::min(R - k_e * n_e, k_a * n_a) : 0;
        if (k_e == 0) {
            if (y_max > 0) consider(0, 0, k_a, y_max);
            continue;
        }
        consider(k_e, R, 0, 0);
        if (y_max > 0) {
            consider(k_e, R - y_max, k_a, y_max);
            consider(k_e, R - k_a, k_a, k_a);
        }
    }
    return worst;
}

// The largest arena demand of one op in any step up to the shape.
int64_t arena_demand(const StepShape& s, int threads) {
    const int64_t R = s.max_rows;
    int64_t demand = rms_norm_arena(s.hidden);
    if (s.dense_layers > 0) demand = std::max(demand, mlp_arena(R, s.dense_inter));
    if (s.kda_layers > 0) demand = std::max(demand, kda_arena(s, R, threads));
    if (s.moe_layers > 0) demand = std::max(demand, moe_arena(s, R, std::min<int64_t>(s.experts, R * s.top_k)));
    if (s.mla_layers > 0) demand = std::max(demand, mla_worst(s, threads));
    return demand;
}

}  // namespace

std::vector<InternalUse> plan_internal(const StepShape& s, int threads) {
    // Both live on the process heap (placement 0).
    return {{"arena (temporaries of the largest op)", 0, uint64_t(Arena::held_for(arena_demand(s, threads))) * 4},
            {"packing scratch (" + std::to_string(threads) + " threads)", 0, pack_bytes(threads)}};
}

void reserve_arena(Arena& arena, const StepShape& s, int threads) { arena.reserve(arena_demand(s, threads)); }

}  // namespace halo::cpu
