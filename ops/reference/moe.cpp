// Reference MoE block (KIMI_LINEAR.md section 5).
//
// Per row x:
//   s      = sigmoid(x W_router^T)                      [E], in F32 or better
//   sel    = s + correction_bias                        used only to choose experts
//   groups: with G > 1 groups, each group scores the sum of its two best sel values; the best topk_groups
//           groups are kept and the others' experts are excluded (G = 1: no-op)
//   idx    = the top_k experts by sel (ties: lower expert id first), best first
//   w_i    = s_i (unbiased) or s_i + bias_i (biased);  w_i /= (sum w + 1e-20) if renormalize;  w_i *= routed_scale
//   out    = sum_i w_i * W2_i (silu(W1_i x) * (W3_i x)) + shared(x)         shared expert unscaled
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/reference/reference.h"
#include "ops/reference/util.h"

namespace halo::ref {

using namespace halo::ops;

namespace {

// y = down(silu(gate x) * up x), added into acc with factor scale.
void swiglu_accumulate(const Tensor& gate, const Tensor& up, const Tensor& down, const double* x, double scale,
                       double* acc) {
    const int64_t inter = gate.rows(), width = down.rows();
    std::vector<double> g(static_cast<size_t>(inter)), u(static_cast<size_t>(inter)), y(static_cast<size_t>(width));
    matvec(gate, x, g.data());
    matvec(up, x, u.data());
    for (int64_t i = 0; i < inter; ++i) g[size_t(i)] = silu(g[size_t(i)]) * u[size_t(i)];
    matvec(down, g.data(), y.data());
    for (int64_t d = 0; d < width; ++d) acc[d] += scale * y[size_t(d)];
}

}  // namespace

// Chosen experts, best first, for selection scores sel [E] (shared with nothing else on purpose: this is the spec).
static std::vector<int> select_experts(const std::vector<double>& sel, int top_k, int n_groups, int topk_groups) {
    const int E = int(sel.size());
    std::vector<bool> allowed(size_t(E), true);
    if (n_groups > 1) {
        const int per = E / n_groups;
        std::vector<std::pair<double, int>> group_score;
        for (int gi = 0; gi < n_groups; ++gi) {
            std::vector<double> v(sel.begin() + gi * per, sel.begin() + (gi + 1) * per);
            std::sort(v.begin(), v.end(), std::greater<double>());
            group_score.push_back({v[0] + (per > 1 ? v[1] : 0.0), gi});
        }
        std::stable_sort(group_score.begin(), group_score.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; });
        std::fill(allowed.begin(), allowed.end(), false);
        for (int i = 0; i < topk_groups; ++i)
            for (int e = 0; e < per; ++e) allowed[size_t(group_score[size_t(i)].second * per + e)] = true;
    }
    std::vector<int> order;
    for (int e = 0; e < E; ++e)
        if (allowed[size_t(e)]) order.push_back(e);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sel[size_t(a)] > sel[size_t(b)]; });
    order.resize(size_t(std::min<int>(top_k, int(order.size()))));
    return order;
}

void moe(const MoeParams& p) {
    const int64_t rows = p.x.rows(), width = p.x.cols();
    const int E = p.n_experts;
    std::vector<double> logits(static_cast<size_t>(E)), s(static_cast<size_t>(E)), sel(static_cast<size_t>(E)), acc(static_cast<size_t>(width));
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> x = row(p.x, r);
        matvec(p.router, x.data(), logits.data());
        for (int e = 0; e < E; ++e) {
            s[size_t(e)] = sigmoid(logits[size_t(e)]);
            sel[size_t(e)] = s[size_t(e)] + (p.router_bias.present() ? at(p.router_bias, e) : 0.0);
        }
        const std::vector<int> idx = select_experts(sel, p.top_k, p.n_groups, p.topk_groups);
        std::vector<double> wts;
        for (int e : idx) wts.push_back(p.weighting == MoeWeighting::biased ? sel[size_t(e)] : s[size_t(e)]);
        if (p.renormalize) {
            const double sum = std::accumulate(wts.begin(), wts.end(), 0.0) + 1e-20;
            for (double& v : wts) v /= sum;
        }
        for (double& v : wts) v *= p.routed_scale;

        std::fill(acc.begin(), acc.end(), 0.0);
        for (size_t i = 0; i < idx.size(); ++i)
            swiglu_accumulate(p.w1[idx[i]], p.w3[idx[i]], p.w2[idx[i]], x.data(), wts[i], acc.data());
        if (p.shared_gate.present()) swiglu_accumulate(p.shared_gate, p.shared_up, p.shared_down, x.data(), 1.0, acc.data());
        store_row(p.out, r, acc.data());
        for (size_t i = 0; i < idx.size(); ++i) {
            if (p.topk_ids.present()) p.topk_ids.host_as<int32_t>()[r * p.top_k + int64_t(i)] = idx[i];
            if (p.topk_weights.present()) p.topk_weights.host_as<float>()[r * p.top_k + int64_t(i)] = float(wts[i]);
        }
    }
}

}  // namespace halo::ref
