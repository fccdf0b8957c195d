// CPU MoE: F32 router, selection and weights per row (as ops/reference/moe.cpp), then the tokens routed to each
// expert are gathered and run through that expert as small matrix products. All experts' projections of one
// phase go into one parallel loop, so decode (one row, 8 experts) keeps every thread busy.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "plugins/cpu/context.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

// Same contract as the reference's selection: best first, ties to the lower expert id.
void select_experts(const float* sel, int E, int top_k, int n_groups, int topk_groups, int* out, int* scratch) {
    int n = 0;
    if (n_groups > 1) {
        const int per = E / n_groups;
        // Group scores on the stack for up to kStackGroups groups (no allocation per row), else on the heap.
        constexpr int kStackGroups = 64;
        std::pair<float, int> stack_gs[kStackGroups];
        std::vector<std::pair<float, int>> heap_gs(n_groups > kStackGroups ? size_t(n_groups) : 0);
        std::pair<float, int>* gs = n_groups > kStackGroups ? heap_gs.data() : stack_gs;
        for (int g = 0; g < n_groups; ++g) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int e = g * per; e < (g + 1) * per; ++e) {
                if (sel[e] > b1) { b2 = b1; b1 = sel[e]; }
                else if (sel[e] > b2) b2 = sel[e];
            }
            gs[g] = {b1 + (per > 1 ? b2 : 0.0f), g};
        }
        // Best score first, equal scores in group order (a stable insertion sort: std::stable_sort may allocate).
        for (int i = 1; i < n_groups; ++i)
            for (int j = i; j > 0 && gs[j].first > gs[j - 1].first; --j) std::swap(gs[j], gs[j - 1]);
        // The kept groups in index order: their ids sorted in place over the first topk_groups entries.
        std::sort(gs, gs + topk_groups, [](const auto& a, const auto& b) { return a.second < b.second; });
        for (int i = 0; i < topk_groups; ++i)
            for (int e = gs[i].second * per; e < (gs[i].second + 1) * per; ++e) scratch[n++] = e;
    } else {
        for (int e = 0; e < E; ++e) scratch[n++] = e;
    }
    const int k = std::min(top_k, n);
    std::partial_sort(scratch, scratch + k, scratch + n, [&](int a, int b) { return sel[a] > sel[b] || (sel[a] == sel[b] && a < b); });
    std::copy(scratch, scratch + k, out);
}

// The op's temporaries, taken from `a` (the arena, or an ArenaCounter when planning): the router's, then each
// expert slot's as its rows are known.
struct RouterTemps {
    float *logits, *bias;  // [T, E], [E]
};
template <class A>
RouterTemps router_temps(A& a, int64_t T, int64_t E) {
    return {a.floats(T * E), a.floats(E)};
}
struct SlotTemps {
    float *xs, *h, *u, *y;  // [n, D] gathered rows, [n, inter] gate and up, [n, D] output
};
template <class A>
SlotTemps slot_temps(A& a, int64_t n, int64_t D, int64_t inter) {
    SlotTemps t;
    t.xs = a.floats(n * D);
    t.h = a.floats(n * inter);
    t.u = a.floats(n * inter);
    t.y = a.floats(n * D);
    return t;
}

struct MoeSlot {
    int id;
    const Tensor *gate, *up, *down;
    int64_t n, inter;
    int64_t n_decode;  // the first n_decode rows are decode rows (0 when rows are not told apart)
    float *xs, *h, *u, *y;
};
struct MoeItem {
    int slot;
    int64_t n0, n1;
};
// Steps of at most this many rows run the down projection and the weighted sum in one parallel loop.
constexpr int64_t kFusedCombineRows = 8;

// What one call of moe() keeps track of, kept between calls (the op runs on the engine thread only).
struct MoeScratch {
    std::vector<int> chosen;
    std::vector<float> weights;
    std::vector<float> route_floats;  // [threads][2 E]: scores and selection scores of the row a thread routes
    std::vector<int> route_ints;      // [threads][E]
    std::vector<uint8_t> decode_row;
    std::vector<std::vector<int64_t>> rows;
    std::vector<std::vector<float>> row_w;
    std::vector<int64_t> n_decode;
    std::vector<MoeSlot> slots;
    std::vector<MoeItem> items;
    std::vector<std::vector<std::pair<const float*, float>>> contrib;
};
MoeScratch& moe_scratch() {
    static thread_local MoeScratch s;
    return s;
}

}  // namespace

int64_t moe_arena(const StepShape& s, int64_t rows, int64_t experts) {
    ArenaCounter a;
    router_temps(a, rows, s.experts);
    const int64_t choices = rows * s.top_k;
    experts = std::clamp<int64_t>(experts, 1, std::min<int64_t>(s.experts, choices));
    for (int64_t e = 0; e < experts; ++e)
        slot_temps(a, choices / experts + (e < choices % experts ? 1 : 0), s.hidden, s.expert_inter);
    if (s.shared_inter > 0) slot_temps(a, rows, s.hidden, s.shared_inter);
    return a.used;
}

void moe(CpuContext& c, const MoeParams& p) {
    const int64_t T = p.x.rows(), D = p.x.cols();
    const int E = p.n_experts, top_k = p.top_k;
    const bool has_shared = p.shared_gate.present();
    const int n_slots = E + (has_shared ? 1 : 0);  // slot E is the shared expert
    const Kernels& k = c.k;
    c.arena.reset();
    const RouterTemps router = router_temps(c.arena, T, E);
    float *logits = router.logits, *bias = router.bias;
    const float* x = p.x.host_as<float>();
    c.matmul(p.batch, T, x, D, p.router, logits, E);
    if (p.router_bias.present())
        k.to_f32(p.router_bias.host(), p.router_bias.dtype, bias, E);
    else
        std::fill(bias, bias + E, 0.0f);

    // Routing per row. The op's bookkeeping lives in vectors kept from call to call (cleared, not freed), so a
    // decode step allocates nothing once the first has run.
    MoeScratch& w = moe_scratch();
    std::vector<int>& chosen = w.chosen;
    std::vector<float>& weights = w.weights;
    chosen.assign(size_t(T * top_k), 0);
    weights.assign(size_t(T * top_k), 0.0f);
    w.route_floats.resize(size_t(c.pool.size()) * 2 * size_t(E));
    w.route_ints.resize(size_t(c.pool.size()) * size_t(E));
    c.pool.run(T, [&](int64_t t, int thread) {
        float* s = w.route_floats.data() + size_t(thread) * 2 * size_t(E);  // this thread's scores
        float* sel = s + E;                                                  // and selection scores
        int* scratch = w.route_ints.data() + size_t(thread) * size_t(E);
        for (int e = 0; e < E; ++e) {
            s[size_t(e)] = sigmoid(logits[t * E + e]);
            sel[size_t(e)] = s[size_t(e)] + bias[e];
        }
        int* idx = &chosen[size_t(t * top_k)];
        float* wt = &weights[size_t(t * top_k)];
        select_experts(sel, E, top_k, p.n_groups, p.topk_groups, idx, scratch);
        double sum = 0;
        for (int i = 0; i < top_k; ++i) {
            wt[i] = p.weighting == MoeWeighting::biased ? sel[size_t(idx[i])] : s[size_t(idx[i])];
            sum += wt[i];
        }
        for (int i = 0; i < top_k; ++i) wt[i] = float((p.renormalize ? wt[i] / (sum + 1e-20) : wt[i]) * p.routed_scale);
        if (p.topk_ids.present())
            for (int i = 0; i < top_k; ++i) p.topk_ids.host_as<int32_t>()[t * top_k + i] = idx[i];
        if (p.topk_weights.present())
            for (int i = 0; i < top_k; ++i) p.topk_weights.host_as<float>()[t * top_k + i] = wt[i];
    });

    // Which rows belong to runs of at most kFewRowRun tokens (decode tokens, short prompt chunks): under batch
    // invariance they go through each expert in the few-row order and the other rows by packed panels (see
    // CpuContext::matmul), so they are gathered apart.
    std::vector<uint8_t>& decode_row = w.decode_row;
    decode_row.clear();
    if (c.batch_invariant && p.batch && p.batch->n_rows == T) {
        decode_row.assign(size_t(T), 0);
        for (int32_t i = 0; i < p.batch->n_runs; ++i)
            if (p.batch->runs[i].n_tokens <= kFewRowRun)
                std::fill_n(decode_row.begin() + p.batch->runs[i].first_row, p.batch->runs[i].n_tokens, uint8_t(1));
    }
    // Rows per expert slot, gathered contiguously: decode rows first, then prompt rows, each in row order.
    std::vector<std::vector<int64_t>>& rows = w.rows;
    std::vector<std::vector<float>>& row_w = w.row_w;
    std::vector<int64_t>& n_decode = w.n_decode;
    if (rows.size() < size_t(n_slots)) {
        rows.resize(size_t(n_slots));
        row_w.resize(size_t(n_slots));
    }
    for (int e = 0; e < n_slots; ++e) {
        rows[size_t(e)].clear();
        row_w[size_t(e)].clear();
    }
    n_decode.assign(size_t(n_slots), 0);
    for (int pass = decode_row.empty() ? 1 : 0; pass < 2; ++pass)
        for (int64_t t = 0; t < T; ++t) {
            if (!decode_row.empty() && decode_row[size_t(t)] != (pass == 0 ? 1 : 0)) continue;
            for (int i = 0; i < top_k; ++i) {
                const size_t e = size_t(chosen[size_t(t * top_k + i)]);
                rows[e].push_back(t);
                row_w[e].push_back(weights[size_t(t * top_k + i)]);
                if (pass == 0) ++n_decode[e];
            }
            if (has_shared) {
                rows[size_t(E)].push_back(t);
                row_w[size_t(E)].push_back(1.0f);
                if (pass == 0) ++n_decode[size_t(E)];
            }
        }
    std::vector<MoeSlot>& slots = w.slots;
    slots.clear();
    for (int e = 0; e < n_slots; ++e) {
        if (rows[size_t(e)].empty()) continue;
        MoeSlot s;
        s.id = e;
        s.gate = e == E ? &p.shared_gate : &p.w1[e];
        s.up = e == E ? &p.shared_up : &p.w3[e];
        s.down = e == E ? &p.shared_down : &p.w2[e];
        s.n = int64_t(rows[size_t(e)].size());
        s.n_decode = n_decode[size_t(e)];
        s.inter = s.gate->rows();
        const SlotTemps t = slot_temps(c.arena, s.n, D, s.inter);
        s.xs = t.xs;
        s.h = t.h;
        s.u = t.u;
        s.y = t.y;
        for (int64_t i = 0; i < s.n; ++i) std::copy(x + rows[size_t(e)][size_t(i)] * D, x + (rows[size_t(e)][size_t(i)] + 1) * D, s.xs + i * D);
        slots.push_back(s);
    }

    // Work items: (slot, column chunk). Phase 1: gate and up of the chunk's intermediate columns, then SwiGLU on
    // them; phase 2: the down projection's chunk of output columns. A step of few rows (decode) runs phase 2 per
    // output chunk across all slots and adds each slot's part into the output there, in slot order: no third loop.
    const int threads = c.pool.size();
    auto make_items = [&](bool down) -> const std::vector<MoeItem>& {
        std::vector<MoeItem>& items = w.items;
        items.clear();
        int64_t total_cols = 0;
        for (const MoeSlot& s : slots) total_cols += down ? D : s.inter;
        const int64_t chunk = std::max<int64_t>(32, (total_cols / (threads * 8) + 31) / 32 * 32);
        for (int i = 0; i < int(slots.size()); ++i) {
            const int64_t N = down ? D : slots[size_t(i)].inter;
            for (int64_t n0 = 0; n0 < N; n0 += chunk) items.push_back({i, n0, std::min(N, n0 + chunk)});
        }
        // The largest items first (a prompt's shared expert holds every row), so no thread is left with one at the
        // end while the others wait. Each item writes its own outputs: the order changes no result.
        auto work = [&](const MoeItem& it) { return slots[size_t(it.slot)].n * (it.n1 - it.n0); };
        std::sort(items.begin(), items.end(), [&](const MoeItem& a, const MoeItem& b) {
            return work(a) > work(b) || (work(a) == work(b) && (a.slot < b.slot || (a.slot == b.slot && a.n0 < b.n0)));
        });
        return items;
    };
    // Rows [r0, r1) of slot s through projection proj (0 gate, 1 up, 2 down) for output columns [n0, n1), in an
    // order that does not depend on the other rows (under batch invariance): decode rows in the few-row order,
    // prompt rows by packed panels, except a routed expert's prompt rows under sparse routing. There a 512-token
    // chunk gives an expert at most 64 rows on average (16 at 8 of 256 experts), and the few-row order's blocked
    // form, which reads the weights once for all of them, is about 1.8x as fast as packed panels at 16 rows of an
    // expert streamed from memory (5 % slower at 64, 13 % at 128). The choice depends on the model only.
    const bool sparse_routing = int64_t(E) >= 8 * int64_t(top_k);
    auto project = [&](const MoeSlot& s, int proj, int64_t n0, int64_t n1, float* pk) {
        auto run = [&](CpuContext::MatmulKernel kernel, int64_t r0, int64_t r1) {
            if (r1 <= r0) return;
            if (proj == 2)
                kernel(r1 - r0, s.h + r0 * s.inter, s.inter, CpuContext::as_matrix(*s.down), n0, n1, s.y + r0 * D, D,
                       false, pk);
            else
                kernel(r1 - r0, s.xs + r0 * D, D, CpuContext::as_matrix(proj == 0 ? *s.gate : *s.up), n0, n1,
                       (proj == 0 ? s.h : s.u) + r0 * s.inter, s.inter, false, pk);
        };
        if (decode_row.empty()) {
            run(c.default_matmul(), 0, s.n);
        } else if (s.id != E && sparse_routing) {
            run(k.matmul_rows, 0, s.n);
        } else {
            run(k.matmul_rows, 0, s.n_decode);
            run(k.matmul_packed, s.n_decode, s.n);
        }
    };
    {
        const std::vector<MoeItem>& items = make_items(false);
        c.pool.run(int64_t(items.size()), [&](int64_t ii, int thread) {
            const MoeItem& it = items[size_t(ii)];
            const MoeSlot& s = slots[size_t(it.slot)];
            float* pk = c.pack_buffer(thread);
            project(s, 0, it.n0, it.n1, pk);
            project(s, 1, it.n0, it.n1, pk);
            for (int64_t r = 0; r < s.n; ++r) {
                float* h = s.h + r * s.inter;
                const float* u = s.u + r * s.inter;
                for (int64_t j = it.n0; j < it.n1; ++j) h[j] = silu(h[j]) * u[j];
            }
        });
    }

    float* out = p.out.host_as<float>();
    if (T <= kFusedCombineRows) {
        // Chunks of output columns (multiples of 32, so each chunk's axpy splits its elements as a whole-row axpy
        // does): every slot's down rows for the chunk, added into out in slot order.
        const int64_t chunk = std::max<int64_t>(32, (D / (threads * 8) + 31) / 32 * 32);
        c.pool.run((D + chunk - 1) / chunk, [&](int64_t ci, int thread) {
            const int64_t n0 = ci * chunk, n1 = std::min(D, n0 + chunk);
            float* pk = c.pack_buffer(thread);
            for (int64_t t = 0; t < T; ++t) std::fill(out + t * D + n0, out + t * D + n1, 0.0f);
            for (const MoeSlot& s : slots) {
                project(s, 2, n0, n1, pk);
                for (int64_t i = 0; i < s.n; ++i)
                    k.axpy(row_w[size_t(s.id)][size_t(i)], s.y + i * D + n0, out + rows[size_t(s.id)][size_t(i)] * D + n0,
                           n1 - n0);
            }
        });
        return;
    }
    {
        const std::vector<MoeItem>& items = make_items(true);
        c.pool.run(int64_t(items.size()), [&](int64_t ii, int thread) {
            const MoeItem& it = items[size_t(ii)];
            project(slots[size_t(it.slot)], 2, it.n0, it.n1, c.pack_buffer(thread));
        });
    }

    // out[t] = sum over the slots that hold row t of weight * y, in slot order.
    std::vector<std::vector<std::pair<const float*, float>>>& contrib = w.contrib;
    if (contrib.size() < size_t(T)) contrib.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) contrib[size_t(t)].clear();
    for (const MoeSlot& s : slots)
        for (int64_t i = 0; i < s.n; ++i)
            contrib[size_t(rows[size_t(s.id)][size_t(i)])].push_back({s.y + i * D, row_w[size_t(s.id)][size_t(i)]});
    c.pool.run(T, [&](int64_t t, int) {
        float* o = out + t * D;
        std::fill(o, o + D, 0.0f);
        for (const auto& [y, wt] : contrib[size_t(t)]) k.axpy(wt, y, o, D);
    });
}

}  // namespace halo::cpu
