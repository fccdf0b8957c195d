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
    DType wdt = DType::bf16;
};

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
    for (int64_t e = 0; e < c.E; ++e) {
        w1.push_back(&h.input("w1." + std::to_string(e), c.wdt, {c.I, c.D}, v.normal(c.I * c.D, 0.3f)));
        w3.push_back(&h.input("w3." + std::to_string(e), c.wdt, {c.I, c.D}, v.normal(c.I * c.D, 0.3f)));
        w2.push_back(&h.input("w2." + std::to_string(e), c.wdt, {c.D, c.I}, v.normal(c.D * c.I, 0.3f)));
    }
    const int64_t Is = c.I * 2;
    auto& sg = h.input("shared_gate", c.wdt, {Is, c.D}, v.normal(Is * c.D, 0.3f));
    auto& su = h.input("shared_up", c.wdt, {Is, c.D}, v.normal(Is * c.D, 0.3f));
    auto& sd = h.input("shared_down", c.wdt, {c.D, Is}, v.normal(c.D * Is, 0.3f));
    auto& out = h.output("out", {c.rows, c.D});
    auto& wts = h.output("topk_weights", {c.rows, c.top_k});
    std::string name = "moe/rows" + std::to_string(c.rows) + "/E" + std::to_string(c.E) + "k" + std::to_string(c.top_k) +
                       "/groups" + std::to_string(c.groups) + (c.shared ? "/shared" : "") +
                       (c.renormalize ? "/renorm" : "") +
                       (c.weighting == MoeWeighting::biased ? "/biased" : "/unbiased") + "/" + dtype_name(c.wdt);
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
    MoeCase odd;  // odd sizes, 3 of 10 experts, no shared expert, no renormalisation, F16 weights
    odd.rows = 9;
    odd.D = 37;
    odd.I = 13;
    odd.E = 10;
    odd.top_k = 3;
    odd.shared = false;
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
}

}  // namespace

}  // namespace halo::test
