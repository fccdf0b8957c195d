// moe on HIP: router logits as a matrix product, routing and grouping by expert on the device (moe.hip), the routed
// experts through tables of every expert's weight views uploaded to the workspace (so the chosen experts never come
// back to the host and the op does not wait for the stream), the shared expert as an mlp, and a weighted sum per row.
#include "plugins/hip/ops/moe/moe.h"

#include <string>
#include <vector>

#include "plugins/hip/ops/linear/matmul.h"
#include "plugins/hip/ops/mlp/mlp.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

namespace {

// The weight view of one expert projection, checked against its shape [rows, cols].
WeightView expert_view(const Tensor& t, int64_t rows, int64_t cols, const std::string& what) {
    const WeightView w = weight_view(t, "moe");
    if (w.rows != rows || w.cols != cols)
        throw Error("moe: " + what + " is " + shape_string(t) + ", expected [" + std::to_string(rows) + ", " +
                    std::to_string(cols) + "]");
    return w;
}

void check_routing(const MoeParams& p) {
    const int E = p.n_experts;
    if (E <= 0 || p.top_k <= 0 || p.top_k > E)
        throw Error("moe: top_k " + std::to_string(p.top_k) + " of " + std::to_string(E) + " experts");
    if (p.n_groups > 1) {
        if (p.n_groups > 64) unsupported("moe", "more than 64 expert groups (" + std::to_string(p.n_groups) + ")");
        const int per = E / p.n_groups;
        if (per < 1 || p.topk_groups < 1 || p.topk_groups > p.n_groups || p.top_k > p.topk_groups * per)
            throw Error("moe: " + std::to_string(E) + " experts in " + std::to_string(p.n_groups) + " groups, " +
                        std::to_string(p.topk_groups) + " groups kept, cannot choose top_k " +
                        std::to_string(p.top_k));
    }
}

}  // namespace

void moe(Context& c, const MoeParams& p) {
    if (p.x.dtype != DType::f32 || p.out.dtype != DType::f32) unsupported("moe", "activations other than F32");
    check_routing(p);
    const int64_t rows = p.x.rows(), D = p.x.cols();
    const int E = p.n_experts, k = p.top_k;
    if (p.out.numel() != rows * D)
        throw Error("moe: x " + shape_string(p.x) + " and out " + shape_string(p.out) + " do not fit");
    const WeightView router = expert_view(p.router, E, D, "the router");
    const unsigned char* bias = nullptr;
    uint32_t bias_kind = kF32;
    if (p.router_bias.present()) {
        if (p.router_bias.quantized() || p.router_bias.numel() != E)
            unsupported("moe", "a router bias " + shape_string(p.router_bias) + " (a float vector of E is expected)");
        const WeightView b = weight_view(p.router_bias, "moe");
        bias = b.data;
        bias_kind = b.kind;
    }
    if (p.topk_ids.present() && (p.topk_ids.dtype != DType::i32 || p.topk_ids.numel() != rows * k))
        throw Error("moe: topk_ids " + shape_string(p.topk_ids) + " (expected I32 [rows, top_k])");
    if (p.topk_weights.present() && (p.topk_weights.dtype != DType::f32 || p.topk_weights.numel() != rows * k))
        throw Error("moe: topk_weights " + shape_string(p.topk_weights) + " (expected F32 [rows, top_k])");

    const int64_t I = p.w1[0].rows();
    std::vector<WeightView> w1(static_cast<size_t>(E)), w3(w1), w2(w1);
    for (int e = 0; e < E; ++e) {
        const std::string name = "expert " + std::to_string(e);
        w1[size_t(e)] = expert_view(p.w1[e], I, D, name + " w1");
        w3[size_t(e)] = expert_view(p.w3[e], I, D, name + " w3");
        w2[size_t(e)] = expert_view(p.w2[e], D, I, name + " w2");
    }
    const bool shared = p.shared_gate.present();
    WeightView sg, su, sd;
    int64_t Is = 0;
    if (shared) {
        Is = p.shared_gate.rows();
        sg = expert_view(p.shared_gate, Is, D, "the shared gate");
        su = expert_view(p.shared_up, Is, D, "the shared up");
        sd = expert_view(p.shared_down, D, Is, "the shared down");
    }
    if (rows == 0) return;

    c.ws.begin_op();
    const Launch l = c.launch();
    const float* x = ptr<const float>(p.x);
    const int64_t pairs = rows * k, max_tiles = moe_max_tiles(pairs, E);
    float* scores = c.ws.take<float>(rows * E);
    int32_t* ids = c.ws.take<int32_t>(pairs);
    float* weights = c.ws.take<float>(pairs);
    int32_t* counts = c.ws.take<int32_t>(E);
    int32_t* starts = c.ws.take<int32_t>(E);
    int32_t* order = c.ws.take<int32_t>(pairs);
    MoeTile* tiles = c.ws.take<MoeTile>(max_tiles);
    int32_t* tile_count = c.ws.take<int32_t>(1);
    const WeightView* w1_table = c.ws.upload(w1.data(), E);
    const WeightView* w3_table = c.ws.upload(w3.data(), E);
    const WeightView* w2_table = c.ws.upload(w2.data(), E);
    float* h = c.ws.take<float>(pairs * I);
    float* y = c.ws.take<float>(pairs * D);

    matmul(c, x, D, rows, router, scores, E);
    MoeRouting routing;
    routing.experts = E;
    routing.top_k = k;
    routing.n_groups = p.n_groups > 1 ? p.n_groups : 1;
    routing.topk_groups = p.topk_groups;
    routing.renormalize = p.renormalize ? 1 : 0;
    routing.biased = p.weighting == MoeWeighting::biased ? 1 : 0;
    routing.routed_scale = p.routed_scale;
    launch_moe_route(l, scores, rows, bias, bias_kind, routing, ids, weights,
                     p.topk_ids.present() ? ptr<int32_t>(p.topk_ids) : nullptr,
                     p.topk_weights.present() ? ptr<float>(p.topk_weights) : nullptr);
    launch_moe_sort(l, ids, pairs, E, counts, starts, order, tiles, tile_count);
    launch_moe_up(l, x, D, w1_table, w3_table, I, k, order, tiles, tile_count, max_tiles, h);
    launch_moe_down(l, h, I, w2_table, D, order, tiles, tile_count, max_tiles, y);

    float* shared_out = nullptr;
    if (shared) {
        float* g = c.ws.take<float>(rows * Is);
        float* u = c.ws.take<float>(rows * Is);
        shared_out = c.ws.take<float>(rows * D);
        matmul(c, x, D, rows, sg, g, Is);
        matmul(c, x, D, rows, su, u, Is);
        launch_silu_mul(l, g, Is, u, Is, rows, Is, g, Is);
        matmul(c, g, Is, rows, sd, shared_out, D);
    }
    launch_moe_combine(l, y, weights, rows, k, D, shared_out, ptr<float>(p.out));
}

}  // namespace halo::hip
