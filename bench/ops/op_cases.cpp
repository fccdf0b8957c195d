#include "bench/ops/op_cases.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace halo::bench {

using namespace halo::ops;

namespace {

int32_t placement_for(Backend& b, MemoryUse use) {
    const DeviceInfo& d = b.device();
    for (size_t i = 0; i < d.placements.size(); ++i)
        if (d.placements[i].name == d.default_placement[int(use)]) return int32_t(i);
    return 0;
}

// One sequence's run of a case's rows and the step's batch over it, as the engine passes a prompt chunk or a decode
// token (the plugin picks its kernels by the run), kept alive with the case.
struct OneRun {
    SeqRun run;
    SeqBatch batch;
};
std::shared_ptr<OneRun> one_run(int64_t rows) {
    auto r = std::make_shared<OneRun>();
    r->run.n_tokens = int32_t(rows);
    r->batch = {&r->run, 1, int32_t(rows)};
    return r;
}

// Tensors packed into one backend buffer (256-byte aligned, like the engine's per-layer weight groups), filled
// with pseudo-random values of the given scale (or a constant).
class Group {
public:
    Group(Backend& b, MemoryUse use, PreparedCase& pc) : b_(b), use_(use), pc_(pc) {}
    Tensor* add(DType dt, std::initializer_list<int64_t> dims, float scale, float mean = 0.0f) {
        Spec s;
        s.t = make_tensor(nullptr, bytes_, dt, dims);
        s.scale = scale;
        s.mean = mean;
        bytes_ += (s.t.bytes() + 255) / 256 * 256;
        specs_.push_back(std::make_unique<Spec>(s));
        return &specs_.back()->t;
    }
    void allocate() {
        Buffer* buf = b_.allocate(use_, placement_for(b_, use_), std::max<uint64_t>(bytes_, 256));
        pc_.buffers.push_back(buf);
        for (auto& s : specs_) {
            s->t.buffer = buf;
            fill(buf, *s);
        }
    }
    uint64_t bytes() const { return bytes_; }

private:
    struct Spec {
        Tensor t;
        float scale = 1, mean = 0;
    };
    void fill(Buffer* buf, const Spec& s) {
        const uint64_t chunk = uint64_t(16) << 20, es = dtype_size(s.t.dtype);
        std::vector<uint8_t> pattern(std::min<uint64_t>(chunk, s.t.bytes()));
        std::mt19937 rng(uint32_t(s.t.offset * 2654435761u + 7));
        std::normal_distribution<float> d(s.mean, std::max(s.scale, 1e-6f));
        for (size_t i = 0; i < pattern.size() / es; ++i) store_from_f32(pattern.data(), s.t.dtype, i, s.scale ? d(rng) : s.mean);
        for (uint64_t at = 0; at < s.t.bytes(); at += pattern.size())
            b_.write(buf, s.t.offset + at, pattern.data(), std::min<uint64_t>(pattern.size(), s.t.bytes() - at));
    }
    Backend& b_;
    MemoryUse use_;
    PreparedCase& pc_;
    uint64_t bytes_ = 0;
    std::vector<std::unique_ptr<Spec>> specs_;
};

Tensor ids_tensor(Backend& b, PreparedCase& pc, int64_t n, int64_t limit) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 7919 + 17) % limit);
    Buffer* buf = b.allocate(MemoryUse::scratch, placement_for(b, MemoryUse::scratch), uint64_t(n) * 4);
    pc.buffers.push_back(buf);
    b.write(buf, 0, ids.data(), uint64_t(n) * 4);
    return make_tensor(buf, 0, DType::i32, {n});
}

}  // namespace

const std::vector<std::string>& op_names() {
    static const std::vector<std::string> names = {"embedding", "rms_norm", "add", "lm_head", "mlp", "kda", "mla", "moe"};
    return names;
}

PreparedCase prepare(Backend& b, const std::string& op, const Shapes& s, const CaseOptions& o) {
    PreparedCase pc;
    pc.op = op;
    pc.rows = o.rows;
    const int64_t R = o.rows, D = s.hidden;
    const DType bf = DType::bf16;
    Group w(b, MemoryUse::weights, pc), a(b, MemoryUse::scratch, pc), st(b, MemoryUse::state, pc);
    const float ws = 1.0f / std::sqrt(float(D));
    auto act_bytes = [&](int64_t cols) { return uint64_t(R * cols) * 4; };

    if (op == "embedding") {
        Tensor* table = w.add(bf, {s.vocab, D}, 1.0f);
        Tensor* out = a.add(DType::f32, {R, D}, 0.0f);
        w.allocate();
        a.allocate();
        const Tensor ids = ids_tensor(b, pc, R, s.vocab);
        pc.bytes = uint64_t(R * D) * 2 + act_bytes(D) + uint64_t(R) * 4;
        pc.run = [&b, t = *table, ids, o2 = *out] { b.embedding({t, ids, o2}); };
    } else if (op == "rms_norm" || op == "add") {
        Tensor* weight = w.add(bf, {D}, 0.1f, 1.0f);
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, D}, 1.0f);
        w.allocate();
        a.allocate();
        if (op == "rms_norm") {
            pc.bytes = 2 * act_bytes(D) + uint64_t(D) * 2;
            pc.flops = 4.0 * double(R * D);
            pc.run = [&b, x = *x, wt = *weight, y = *y] { b.rms_norm({x, wt, y, 1e-5f}); };
        } else {
            pc.bytes = 3 * act_bytes(D);
            pc.flops = double(R * D);
            pc.run = [&b, x = *x, y = *y] { b.add({x, y, y}); };
        }
    } else if (op == "lm_head") {
        Tensor* head = w.add(bf, {s.vocab, D}, ws);
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, s.vocab}, 0.0f);
        w.allocate();
        a.allocate();
        pc.bytes = head->bytes() + act_bytes(D) + act_bytes(s.vocab);
        pc.flops = 2.0 * double(R * s.vocab * D);
        pc.run = [&b, x = *x, h = *head, y = *y] { b.linear({x, h, y}); };
    } else if (op == "mlp") {
        const int64_t I = s.dense_inter;
        Tensor* g = w.add(bf, {I, D}, ws);
        Tensor* u = w.add(bf, {I, D}, ws);
        Tensor* d = w.add(bf, {D, I}, 1.0f / std::sqrt(float(I)));
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, D}, 0.0f);
        w.allocate();
        a.allocate();
        pc.bytes = w.bytes() + 2 * act_bytes(D);
        pc.flops = 2.0 * double(R * 3 * I * D);
        auto step = one_run(R);
        pc.keep = step;
        pc.run = [&b, x = *x, g = *g, u = *u, d = *d, y = *y, step] {
            MlpParams mp{x, g, u, d, y};
            mp.batch = &step->batch;
            b.mlp(mp);
        };
    } else if (op == "kda") {
        const int64_t H = s.kda_heads, K = s.kda_dim, Dk = H * K, Rk = s.kda_rank, W = s.conv;
        auto p = std::make_shared<KdaParams>();
        KdaWeights* kw = &p->w;
        Tensor* t[15] = {w.add(bf, {Dk, D}, ws), w.add(bf, {Dk, D}, ws), w.add(bf, {Dk, D}, ws),
                         w.add(bf, {Dk, 1, W}, 0.5f), w.add(bf, {Dk, 1, W}, 0.5f), w.add(bf, {Dk, 1, W}, 0.5f),
                         w.add(bf, {Rk, D}, ws), w.add(bf, {Dk, Rk}, 1.0f / std::sqrt(float(Rk))),
                         w.add(DType::f32, {Dk}, 1.0f, -4.0f), w.add(DType::f32, {H}, 0.5f, 1.0f),
                         w.add(bf, {H, D}, ws), w.add(bf, {Rk, D}, ws), w.add(bf, {Dk, Rk}, 1.0f / std::sqrt(float(Rk))),
                         w.add(bf, {K}, 0.1f, 1.0f), w.add(bf, {D, Dk}, 1.0f / std::sqrt(float(Dk)))};
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, D}, 0.0f);
        Tensor* state = st.add(DType::f32, {1, H, K, K}, 0.1f);
        Tensor* conv = st.add(DType::f32, {1, 3, W - 1, Dk}, 1.0f);
        w.allocate();
        a.allocate();
        st.allocate();
        *kw = {*t[0], *t[1], *t[2], *t[3], *t[4], *t[5], *t[6], *t[7], *t[8], *t[9], *t[10], *t[11], *t[12], *t[13], *t[14]};
        p->n_heads = int32_t(H);
        p->head_dim = int32_t(K);
        p->conv_width = int32_t(W);
        p->x = *x;
        p->out = *y;
        p->state = *state;
        p->conv_state = *conv;
        auto step = one_run(R);
        pc.keep = std::make_shared<std::pair<std::shared_ptr<KdaParams>, std::shared_ptr<OneRun>>>(p, step);
        pc.bytes = w.bytes() + 2 * st.bytes() + 2 * act_bytes(D);
        pc.flops = 2.0 * double(R) * double(w.bytes() / 2) + 6.0 * double(R * H * K * K);
        pc.run = [&b, p, step] { b.kda(*p, step->batch); };
    } else if (op == "mla") {
        const int64_t H = s.mla_heads, dq = s.dn + s.dr, dkv = s.dn + s.dv, width = s.rank + s.dr, ps = 256;
        const int64_t pages = (o.context + R + ps - 1) / ps;
        auto p = std::make_shared<MlaParams>();
        Tensor* q = w.add(bf, {H * dq, D}, ws);
        Tensor* kva = w.add(bf, {width, D}, ws);
        Tensor* norm = w.add(bf, {s.rank}, 0.1f, 1.0f);
        Tensor* kvb = w.add(bf, {H * dkv, s.rank}, 1.0f / std::sqrt(float(s.rank)));
        Tensor* op_ = w.add(bf, {D, H * s.dv}, 1.0f / std::sqrt(float(H * s.dv)));
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, D}, 0.0f);
        Group cache(b, MemoryUse::cache, pc);
        Tensor* c = cache.add(o.cache_dtype, {pages, ps, width}, 1.0f);
        w.allocate();
        a.allocate();
        cache.allocate();
        p->w = {*q, *kva, *norm, *kvb, *op_};
        p->n_heads = int32_t(H);
        p->qk_nope_dim = int32_t(s.dn);
        p->qk_rope_dim = int32_t(s.dr);
        p->v_dim = int32_t(s.dv);
        p->kv_lora_rank = int32_t(s.rank);
        p->softmax_scale = float(1.0 / std::sqrt(double(dq)));
        p->x = *x;
        p->out = *y;
        p->cache = *c;
        p->page_size = int32_t(ps);
        auto table = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(pages));
        for (int64_t i = 0; i < pages; ++i) (*table)[size_t(i)] = int32_t(i);
        auto step = one_run(R);
        step->run.pos = int32_t(o.context);
        step->run.pages = table->data();
        step->run.n_pages = int32_t(pages);
        pc.keep = std::make_shared<std::tuple<std::shared_ptr<MlaParams>, std::shared_ptr<OneRun>,
                                              std::shared_ptr<std::vector<int32_t>>>>(p, step, table);
        const double ctx = double(o.context) + double(R);
        pc.bytes = w.bytes() + uint64_t(ctx * double(width * int64_t(dtype_size(o.cache_dtype)))) + 2 * act_bytes(D);
        pc.flops = 2.0 * double(R) * double(w.bytes() / 2) + 2.0 * double(R * H) * ctx * double(width + s.rank);
        pc.run = [&b, p, step] { b.mla(*p, step->batch); };
    } else if (op == "moe") {
        const int64_t E = s.experts, I = s.moe_inter, Is = s.shared_inter;
        auto p = std::make_shared<MoeParams>();
        auto experts = std::make_shared<std::vector<Tensor>>(size_t(3 * E));
        // One buffer per projection kind (each below 2 GB, lavapipe's largest allocation).
        Group g1(b, MemoryUse::weights, pc), g3(b, MemoryUse::weights, pc), g2(b, MemoryUse::weights, pc);
        std::vector<Tensor*> t1, t3, t2;
        for (int64_t e = 0; e < E; ++e) {
            t1.push_back(g1.add(bf, {I, D}, ws));
            t3.push_back(g3.add(bf, {I, D}, ws));
            t2.push_back(g2.add(bf, {D, I}, 1.0f / std::sqrt(float(I))));
        }
        Tensor* router = w.add(bf, {E, D}, ws);
        Tensor* bias = w.add(bf, {E}, 0.01f);
        Tensor* sg = w.add(bf, {Is, D}, ws);
        Tensor* su = w.add(bf, {Is, D}, ws);
        Tensor* sd = w.add(bf, {D, Is}, 1.0f / std::sqrt(float(Is)));
        Tensor* x = a.add(DType::f32, {R, D}, 1.0f);
        Tensor* y = a.add(DType::f32, {R, D}, 0.0f);
        g1.allocate();
        g3.allocate();
        g2.allocate();
        w.allocate();
        a.allocate();
        for (int64_t e = 0; e < E; ++e) {
            (*experts)[size_t(e)] = *t1[size_t(e)];
            (*experts)[size_t(E + e)] = *t3[size_t(e)];
            (*experts)[size_t(2 * E + e)] = *t2[size_t(e)];
        }
        p->x = *x;
        p->out = *y;
        p->router = *router;
        p->router_bias = *bias;
        p->w1 = experts->data();
        p->w3 = experts->data() + E;
        p->w2 = experts->data() + 2 * E;
        p->n_experts = int32_t(E);
        p->top_k = int32_t(s.top_k);
        p->routed_scale = 2.446f;
        p->shared_gate = *sg;
        p->shared_up = *su;
        p->shared_down = *sd;
        auto step = one_run(R);
        p->batch = &step->batch;
        pc.keep = std::make_shared<std::tuple<std::shared_ptr<MoeParams>, std::shared_ptr<std::vector<Tensor>>,
                                              std::shared_ptr<OneRun>>>(p, experts, step);
        const int64_t touched = std::min<int64_t>(E, R * s.top_k);  // distinct experts a step reads, at most
        pc.bytes = w.bytes() + uint64_t(touched) * uint64_t(3 * I * D) * 2 + 2 * act_bytes(D);
        pc.flops = 2.0 * double(R) * double(s.top_k * 3 * I * D + 3 * Is * D + E * D);
        pc.run = [&b, p] { b.moe(*p); };
    } else {
        throw Error("bench_ops: unknown op '" + op + "'");
    }
    return pc;
}

}  // namespace halo::bench
