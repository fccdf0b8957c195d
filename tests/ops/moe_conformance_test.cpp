// Conformance of the MoE block on every plugin: routing (selection by score + bias, optional groups, top-k),
// both weighting modes, renormalisation on and off, with and without a shared expert, odd sizes.
//
// Random routers can produce near-ties where F32 and double pick different experts and the output jumps by O(1),
// which would test luck, not the plugin. Each case is therefore drawn again (new seed) until every row's k-th
// and (k+1)-th selection scores differ by at least 1e-3, far above F32 router error (~1e-6).
// Tolerance 1e-4 normalised (F32 products of length <= 72, weighted sums of <= 4 experts).
#include <algorithm>
#include <cmath>

#include "ops/reference/reference.h"
#include "tests/ops/conformance.h"

namespace halo::test {

using namespace halo::ops;

namespace {

const Tensor& pick(const DualTensor& t, bool ref) { return ref ? t.ref : t.dev; }

struct MoeCase {
    int64_t rows = 5, D = 40, I = 24, E = 8;
    int top_k = 2, groups = 1, topk_groups = 1;
    bool shared = true, renormalize = true;
    MoeWeighting weighting = MoeWeighting::unbiased;
    DType wdt = DType::bf16;         // router, bias and (unless quantized below) the experts
    WeightSpec experts{DType::f32};  // a quantized format here quantizes the routed experts (f32: use wdt)
    WeightSpec shared_w{DType::f32}; // the same for the shared expert
    // Run lengths of the step's sequences, as the engine passes them (empty: no batch). Runs of more than a few
    // tokens are prompt chunks, which a plugin may send through another kernel than decode rows.
    std::vector<int32_t> runs;
};

// Odd sizes (9 rows, D 37, I 13), 3 of 10 experts, no shared expert.
MoeCase odd_moe_case() { return {.rows = 9, .D = 37, .I = 13, .E = 10, .top_k = 3, .shared = false, .runs = {}}; }

WeightSpec spec_or(const WeightSpec& q, DType wdt) { return is_quantized(q.dtype) ? q : WeightSpec{wdt}; }

// Smallest gap between the k-th and (k+1)-th selection score over rows (groups ignored: a lower bound suffices
// when groups are off; with groups the case also checks the group margin loosely via the same data).
double selection_margin(const std::vector<float>& x, const std::vector<float>& router, const std::vector<float>& bias,
                        const MoeCase& c) {
    double worst = 1e9;
    for (int64_t r = 0; r < c.rows; ++r) {
        std::vector<double> sel(static_cast<size_t>(c.E));
        for (int64_t e = 0; e < c.E; ++e) {
            double acc = 0;
            for (int64_t d = 0; d < c.D; ++d)
                acc += double(bf16_to_f32(f32_to_bf16(router[size_t(e * c.D + d)]))) * x[size_t(r * c.D + d)];
            sel[size_t(e)] = 1 / (1 + std::exp(-acc)) + double(bf16_to_f32(f32_to_bf16(bias[size_t(e)])));
        }
        std::sort(sel.begin(), sel.end(), std::greater<double>());
        worst = std::min(worst, sel[size_t(c.top_k - 1)] - sel[size_t(c.top_k)]);
        if (c.groups > 1) worst = std::min(worst, sel[0] - sel[1] + 1.0);  // keep loop uniform
    }
    return worst;
}

void run_moe(Conformance& fx, Backend& plugin, const MoeCase& c,
             const std::function<void(const std::string&, OpHarness&, const std::function<void(Backend&, bool)>&,
                                      const std::vector<const DualTensor*>&, double)>& run_case) {
    uint64_t seed = uint64_t(c.rows * 101 + c.E);
    std::vector<float> xv, rv, bv;
    for (int attempt = 0;; ++attempt, ++seed) {
        Values v(seed);
        xv = v.normal(c.rows * c.D);
        rv = v.normal(c.E * c.D, 2.0f / std::sqrt(float(c.D)));
        bv = v.normal(c.E, 0.1f);
        if (selection_margin(xv, rv, bv, c) >= 1e-3) break;
        if (attempt > 200) FAIL() << "could not draw a MoE case without near-ties";
    }
    Values v(seed + 7);
    OpHarness h(plugin);
    auto& x = h.input("x", DType::f32, {c.rows, c.D}, xv, MemoryUse::scratch);
    auto& router = h.input("router", c.wdt, {c.E, c.D}, rv);
    auto& bias = h.input("bias", c.wdt, {c.E}, bv);
    std::vector<DualTensor*> w1, w2, w3;
    const WeightSpec ew = spec_or(c.experts, c.wdt), sw = spec_or(c.shared_w, c.wdt);
    for (int64_t e = 0; e < c.E; ++e) {
        w1.push_back(&weight(h, "w1." + std::to_string(e), ew, {c.I, c.D}, v.normal(c.I * c.D, 0.3f)));
        w3.push_back(&weight(h, "w3." + std::to_string(e), ew, {c.I, c.D}, v.normal(c.I * c.D, 0.3f)));
        w2.push_back(&weight(h, "w2." + std::to_string(e), ew, {c.D, c.I}, v.normal(c.D * c.I, 0.3f)));
    }
    const int64_t Is = c.I * 2;
    auto& sg = weight(h, "shared_gate", sw, {Is, c.D}, v.normal(Is * c.D, 0.3f));
    auto& su = weight(h, "shared_up", sw, {Is, c.D}, v.normal(Is * c.D, 0.3f));
    auto& sd = weight(h, "shared_down", sw, {c.D, Is}, v.normal(c.D * Is, 0.3f));
    auto& out = h.output("out", {c.rows, c.D});
    auto& wts = h.output("topk_weights", {c.rows, c.top_k});
    std::string name = "moe/rows" + std::to_string(c.rows) + "/E" + std::to_string(c.E) + "k" + std::to_string(c.top_k) +
                       "/groups" + std::to_string(c.groups) + (c.shared ? "/shared" : "") +
                       (c.renormalize ? "/renorm" : "") +
                       (c.weighting == MoeWeighting::biased ? "/biased" : "/unbiased") + "/" + dtype_name(c.wdt);
    if (is_quantized(c.experts.dtype)) name += "/experts_" + c.experts.name();
    if (c.shared && is_quantized(c.shared_w.dtype)) name += "/shared_" + c.shared_w.name();
    if (!c.runs.empty()) {
        name += "/runs";
        for (int32_t n : c.runs) name += "_" + std::to_string(n);
    }
    const StepRuns step(c.runs);
    run_case(name, h, [&](Backend& b, bool ref) {
        std::vector<Tensor> t1, t2, t3;
        for (int64_t e = 0; e < c.E; ++e) {
            t1.push_back(pick(*w1[size_t(e)], ref));
            t2.push_back(pick(*w2[size_t(e)], ref));
            t3.push_back(pick(*w3[size_t(e)], ref));
        }
        MoeParams p;
        p.x = pick(x, ref);
        p.out = pick(out, ref);
        p.router = pick(router, ref);
        p.router_bias = pick(bias, ref);
        p.w1 = t1.data();
        p.w2 = t2.data();
        p.w3 = t3.data();
        p.n_experts = int32_t(c.E);
        p.top_k = c.top_k;
        p.n_groups = c.groups;
        p.topk_groups = c.topk_groups;
        p.renormalize = c.renormalize;
        p.routed_scale = 2.446f;
        p.weighting = c.weighting;
        if (c.shared) {
            p.shared_gate = pick(sg, ref);
            p.shared_up = pick(su, ref);
            p.shared_down = pick(sd, ref);
        }
        p.topk_weights = pick(wts, ref);
        if (!c.runs.empty()) p.batch = &step.batch;
        ref ? halo::ref::moe(p) : b.moe(p);
    }, {&out, &wts}, 1e-4);
    (void)fx;
}

TEST_P(Conformance, Moe) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (int64_t rows : {1, 2, 17, 64})
        for (MoeWeighting w : {MoeWeighting::unbiased, MoeWeighting::biased}) {
            MoeCase c;
            c.rows = rows;
            c.weighting = w;
            run_moe(*this, plugin(), c, rc);
        }
    MoeCase odd = odd_moe_case();  // no renormalisation, F16 weights
    odd.renormalize = false;
    odd.wdt = DType::f16;
    run_moe(*this, plugin(), odd, rc);
    MoeCase grouped;  // 4 groups of 4, 2 groups kept, top 3
    grouped.rows = 7;
    grouped.E = 16;
    grouped.top_k = 3;
    grouped.groups = 4;
    grouped.topk_groups = 2;
    grouped.wdt = DType::f32;
    run_moe(*this, plugin(), grouped, rc);
    // Prompt chunks as the engine passes them: one long run, and decode rows beside an odd-sized chunk (odd D and
    // I, so the experts' products have tails), in each float format of the experts.
    for (DType wdt : {DType::bf16, DType::f16, DType::f32}) {
        MoeCase prompt;
        prompt.rows = 64;
        prompt.runs = {64};
        prompt.wdt = wdt;
        run_moe(*this, plugin(), prompt, rc);
        MoeCase mixed;
        mixed.rows = 153;
        mixed.D = 37;
        mixed.I = 45;
        mixed.runs = {1, 2, 150};
        mixed.wdt = wdt;
        run_moe(*this, plugin(), mixed, rc);
        // Sparse routing (2 of 16 experts, as 8 of 256): a plugin may take another kernel for the routed experts'
        // prompt rows. D over 256 and I over 64, neither a multiple of 16.
        MoeCase sparse;
        sparse.rows = 41;
        sparse.D = 300;
        sparse.I = 70;
        sparse.E = 16;
        sparse.runs = {1, 40};
        sparse.wdt = wdt;
        run_moe(*this, plugin(), sparse, rc);
    }
}

TEST_P(Conformance, MoeQuantized) {
    // Quantized routed experts (router and bias stay BF16, as in a compressed-tensors checkpoint): both formats at
    // the decode and prefill row counts, a group that does not divide the widths (D = 40, I = 24: partial groups
    // and, for D = 37, partial words), quantized shared experts alone, and the mixed case (experts q4, shared q8).
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType fmt : {DType::q4, DType::q8})
        for (int64_t rows : {1, 3, 17, 70}) {
            MoeCase c;
            c.rows = rows;
            c.experts = WeightSpec{fmt, 32};
            run_moe(*this, plugin(), c, rc);
        }
    MoeCase odd = odd_moe_case();  // a group of 16: partial last groups and words
    odd.experts = WeightSpec{DType::q4, 16};
    run_moe(*this, plugin(), odd, rc);
    for (int64_t rows : {2, 17}) {
        MoeCase shared_only;  // float experts, quantized shared expert
        shared_only.rows = rows;
        shared_only.shared_w = WeightSpec{DType::q8, 32};
        run_moe(*this, plugin(), shared_only, rc);
        MoeCase mixed;  // experts int4, shared expert int8 (a load-time choice the CLI offers)
        mixed.rows = rows;
        mixed.experts = WeightSpec{DType::q4, 32};
        mixed.shared_w = WeightSpec{DType::q8, 48};
        run_moe(*this, plugin(), mixed, rc);
    }
}

}  // namespace

}  // namespace halo::test
