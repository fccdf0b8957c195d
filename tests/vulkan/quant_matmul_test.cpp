// Quantized weights (Q4 / Q8 with per-group scales, made by ref::quantize_rows) on the Vulkan plugin against the
// reference ops, which dequantize through ops::weight_at. Covers both matrix-product shaders (gemv up to 4 rows,
// gemm above), groups that are not multiples of 8, partial last groups, rows that are not whole words, every scale
// dtype, scales beside the words in one buffer or in a buffer of their own, weights split into row blocks, MoE
// experts of mixed formats spread over several passes, and MLA's per-head kv_b reads. Tolerance: 1e-4 normalised,
// as the conformance suite for F32-accumulated dot products of length <= 2304 (the weights are exact, so the only
// difference from the reference is the order of the f32 sums).
#include <algorithm>
#include <cstring>

#include "ops/reference/quantize.h"
#include "ops/reference/reference.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

constexpr double kTol = 1e-4;

struct QuantSpec {
    DType format = DType::q4;  // q4, q8, or a float type for an unquantized tensor
    int32_t group = 32;
    DType scale_dtype = DType::bf16;
    bool separate_scales = false;  // scales in a buffer of their own, else after the words in the same buffer
    uint64_t lead = 0;             // bytes before the words in their buffer (a multiple of 4)
};

std::string describe(const QuantSpec& q) {
    std::string s = dtype_name(q.format);
    if (is_quantized(q.format))
        s += " g" + std::to_string(q.group) + " " + dtype_name(q.scale_dtype) +
             (q.separate_scales ? " separate scales" : " scales beside") + " lead " + std::to_string(q.lead);
    return s;
}

// Weight tensors in host memory (reference) and in Vulkan buffers, quantized or not.
class Weights {
public:
    explicit Weights(vk::VulkanBackend& b) : b_(b) {
        const auto& d = b.device();
        for (size_t i = 0; i < d.placements.size(); ++i)
            if (d.placements[i].name == d.default_placement[int(MemoryUse::weights)]) placement_ = int32_t(i);
    }
    ~Weights() {
        for (Buffer* d : dev_) b_.release(d);
    }

    // A [rows, cols] weight from values (BF16-rounded first, as a checkpoint would hold them).
    Pair& make(const QuantSpec& q, int64_t rows, int64_t cols, const std::vector<float>& values) {
        std::vector<uint16_t> src(size_t(rows * cols));
        for (size_t i = 0; i < src.size(); ++i) src[i] = f32_to_bf16(values[i % values.size()]);
        auto p = std::make_unique<Pair>();
        if (!is_quantized(q.format)) {
            const uint64_t bytes = uint64_t(rows * cols) * dtype_size(q.format);
            p->host = std::make_unique<HostBuffer>(MemoryUse::weights, 0, bytes);
            for (size_t i = 0; i < src.size(); ++i) store_from_f32(p->host->host, q.format, i, bf16_to_f32(src[i]));
            p->dev = upload(p->host->host, bytes);
            p->ref = make_tensor(p->host.get(), 0, q.format, {rows, cols});
            p->vk = make_tensor(p->dev, 0, q.format, {rows, cols});
            pairs_.push_back(std::move(p));
            return *pairs_.back();
        }
        const uint64_t words = uint64_t(rows) * row_bytes(q.format, cols);
        const uint64_t scales = uint64_t(rows) * uint64_t((cols + q.group - 1) / q.group) * dtype_size(q.scale_dtype);
        // Scales beside the words start one element past an 8-byte boundary: aligned to their dtype, not to 16 bytes.
        const uint64_t scale_at = q.separate_scales ? 0 : (q.lead + words + 7) / 8 * 8 + dtype_size(q.scale_dtype);
        const uint64_t bytes = q.separate_scales ? q.lead + words : scale_at + scales;
        p->host = std::make_unique<HostBuffer>(MemoryUse::weights, 0, bytes);
        std::memset(p->host->host, 0, bytes);
        auto* base = static_cast<uint8_t*>(p->host->host);
        HostBuffer* scale_host = p->host.get();
        if (q.separate_scales) {
            scale_hosts_.push_back(std::make_unique<HostBuffer>(MemoryUse::weights, 0, scales));
            scale_host = scale_hosts_.back().get();
        }
        ref::quantize_rows(src.data(), DType::bf16, rows, cols, q.format, q.group, q.scale_dtype, base + q.lead,
                           static_cast<uint8_t*>(scale_host->host) + scale_at);
        p->dev = upload(base, bytes);
        Buffer* scale_dev = q.separate_scales ? upload(scale_host->host, scales) : p->dev;
        p->ref = make_tensor(p->host.get(), q.lead, q.format, {rows, cols});
        p->ref.scale = {scale_host, scale_at, q.scale_dtype, q.group};
        p->vk = make_tensor(p->dev, q.lead, q.format, {rows, cols});
        p->vk.scale = {scale_dev, scale_at, q.scale_dtype, q.group};
        pairs_.push_back(std::move(p));
        return *pairs_.back();
    }

private:
    Buffer* upload(const void* data, uint64_t bytes) {
        Buffer* d = b_.allocate(MemoryUse::weights, placement_, bytes);
        b_.write(d, 0, data, bytes);
        dev_.push_back(d);
        return d;
    }

    vk::VulkanBackend& b_;
    int32_t placement_ = 0;
    std::vector<std::unique_ptr<Pair>> pairs_;
    std::vector<std::unique_ptr<HostBuffer>> scale_hosts_;
    std::vector<Buffer*> dev_;
};

void run_linear(vk::VulkanBackend& b, const QuantSpec& q, int64_t rows, int64_t out, int64_t in) {
    Tensors t(b);
    Weights w(b);
    auto& wt = w.make(q, out, in, random_values(size_t(out * in), 11, 0.1f));
    auto& x = t.make(DType::f32, {rows, in}, random_values(size_t(rows * in), 12), MemoryUse::scratch);
    auto& y = t.make(DType::f32, {rows, out}, {}, MemoryUse::scratch);
    b.linear({x.vk, wt.vk, y.vk});
    ref::linear({x.ref, wt.ref, y.ref});
    EXPECT_LE(normalised_error(b, y), kTol) << "linear " << describe(q) << " rows " << rows << " [" << out << ", " << in << "]";
}

void run_mlp(vk::VulkanBackend& b, const QuantSpec& qg, const QuantSpec& qd, int64_t rows, int64_t dim, int64_t inter) {
    Tensors t(b);
    Weights w(b);
    auto& g = w.make(qg, inter, dim, random_values(size_t(inter * dim), 21, 0.1f));
    auto& u = w.make(qg, inter, dim, random_values(size_t(inter * dim), 22, 0.1f));
    auto& d = w.make(qd, dim, inter, random_values(size_t(inter * dim), 23, 0.1f));
    auto& x = t.make(DType::f32, {rows, dim}, random_values(size_t(rows * dim), 24), MemoryUse::scratch);
    auto& y = t.make(DType::f32, {rows, dim}, {}, MemoryUse::scratch);
    b.mlp({x.vk, g.vk, u.vk, d.vk, y.vk});
    ref::mlp({x.ref, g.ref, u.ref, d.ref, y.ref});
    EXPECT_LE(normalised_error(b, y), kTol) << "mlp gate/up " << describe(qg) << ", down " << describe(qd) << " rows "
                                            << rows << " dim " << dim << " inter " << inter;
}

// E routed experts, expert e quantized as specs[e % specs.size()], and a shared expert as `shared`.
void run_moe(vk::VulkanBackend& b, const std::vector<QuantSpec>& specs, const QuantSpec& shared, int64_t rows,
             int64_t dim, int64_t inter) {
    const int E = 6, top_k = 2;
    Tensors t(b);
    Weights w(b);
    std::vector<Tensor> w1v, w3v, w2v, w1r, w3r, w2r;
    for (int e = 0; e < E; ++e) {
        const QuantSpec& q = specs[size_t(e) % specs.size()];
        auto& g = w.make(q, inter, dim, random_values(size_t(inter * dim), 100 + uint64_t(e), 0.1f));
        auto& u = w.make(q, inter, dim, random_values(size_t(inter * dim), 200 + uint64_t(e), 0.1f));
        auto& d = w.make(q, dim, inter, random_values(size_t(inter * dim), 300 + uint64_t(e), 0.1f));
        w1v.push_back(g.vk), w3v.push_back(u.vk), w2v.push_back(d.vk);
        w1r.push_back(g.ref), w3r.push_back(u.ref), w2r.push_back(d.ref);
    }
    auto& sg = w.make(shared, inter, dim, random_values(size_t(inter * dim), 31, 0.1f));
    auto& su = w.make(shared, inter, dim, random_values(size_t(inter * dim), 32, 0.1f));
    auto& sd = w.make(shared, dim, inter, random_values(size_t(inter * dim), 33, 0.1f));
    auto& router = t.make(DType::bf16, {E, dim}, random_values(size_t(E * dim), 34, 0.3f));
    auto& x = t.make(DType::f32, {rows, dim}, random_values(size_t(rows * dim), 35), MemoryUse::scratch);
    auto& out = t.make(DType::f32, {rows, dim}, {}, MemoryUse::scratch);
    auto params = [&](bool r) {
        auto pick = [&](Pair& p) { return r ? p.ref : p.vk; };
        MoeParams p;
        p.x = pick(x);
        p.out = pick(out);
        p.router = pick(router);
        p.w1 = (r ? w1r : w1v).data();
        p.w3 = (r ? w3r : w3v).data();
        p.w2 = (r ? w2r : w2v).data();
        p.n_experts = E;
        p.top_k = top_k;
        p.shared_gate = pick(sg);
        p.shared_up = pick(su);
        p.shared_down = pick(sd);
        return p;
    };
    b.moe(params(false));
    ref::moe(params(true));
    std::string formats;
    for (const QuantSpec& q : specs) formats += describe(q) + "; ";
    EXPECT_LE(normalised_error(b, out), kTol) << "moe experts " << formats << "shared " << describe(shared) << " rows "
                                              << rows << " dim " << dim << " inter " << inter;
}

// MLA with every projection quantized as q (kv_b is read per head: absorbed into q, and W_UV as a batched product).
void run_mla(vk::VulkanBackend& b, const QuantSpec& q, int64_t H, const std::vector<int>& run_tokens, int history) {
    const int64_t dn = 16, dr = 8, dv = 16, r = 40, hidden = 48, dq = dn + dr, dkv = dn + dv, width = r + dr;
    const int32_t ps = 16;
    const PagedRuns pr(run_tokens, history, ps, PagedRuns::PageOrder::ascending);
    const int64_t rows = pr.rows, pages = pr.pages;
    Tensors t(b);
    Weights w(b);
    const float ws = 1.0f / std::sqrt(float(hidden));
    auto& qp = w.make(q, H * dq, hidden, random_values(size_t(H * dq * hidden), 1, ws));
    auto& kva = w.make(q, width, hidden, random_values(size_t(width * hidden), 2, ws));
    auto& norm = t.make(DType::bf16, {r}, random_values(size_t(r), 3, 0.1f));
    auto& kvb = w.make(q, H * dkv, r, random_values(size_t(H * dkv * r), 4, 0.2f));
    auto& o = w.make(q, hidden, H * dv, random_values(size_t(hidden * H * dv), 5, 0.05f));
    auto& x = t.make(DType::f32, {rows, hidden}, random_values(size_t(rows * hidden), 6), MemoryUse::scratch);
    auto& out = t.make(DType::f32, {rows, hidden}, {}, MemoryUse::scratch);
    auto& cache = t.make(DType::f32, {pages, ps, width}, random_values(size_t(pages * ps * width), 7), MemoryUse::cache);
    const MlaPairs pairs{qp, kva, norm, kvb, o, x, out, cache};
    const MlaDims dims{H, dn, dr, dv, r};
    b.mla(mla_params(pairs, dims, ps, false), pr.batch());
    ref::mla(mla_params(pairs, dims, ps, true), pr.batch());
    EXPECT_LE(normalised_error(b, out), kTol) << "mla " << describe(q) << " H " << H << " rows " << rows;
}

}  // namespace

TEST(VulkanQuant, LinearMatchesReference) {
    auto b = make_vulkan();
    const DType formats[] = {DType::q4, DType::q8};
    for (DType f : formats) {
        // Groups: multiples of 8, odd (boundaries inside a word), wider than the row, one element.
        for (int32_t group : {32, 8, 7, 12, 100, 1})
            for (int64_t rows : {1, 3, 70})
                for (int64_t in : {64, 40, 45}) run_linear(*b, {f, group, DType::bf16, false, 0}, rows, 37, in);
        // Every scale dtype, scales in their own buffer, words at an offset that is not 16-byte aligned.
        for (DType sdt : {DType::f16, DType::f32})
            for (int64_t rows : {2, 66}) run_linear(*b, {f, 16, sdt, true, 4}, rows, 19, 96);
        for (int64_t rows : {1, 65}) run_linear(*b, {f, 24, DType::bf16, true, 12}, rows, 50, 72);
    }
}

TEST(VulkanQuant, DenseMlpMatchesReference) {
    auto b = make_vulkan();
    for (int64_t rows : {1, 4, 67}) {
        run_mlp(*b, {DType::q4, 32}, {DType::q8, 16, DType::f32, true}, rows, 64, 96);
        run_mlp(*b, {DType::q8, 12, DType::f16}, {DType::q4, 7}, rows, 48, 40);
        run_mlp(*b, {DType::q4, 5, DType::bf16, true, 4}, {DType::bf16}, rows, 33, 29);  // odd dims: element path
    }
}

TEST(VulkanQuant, MoeExpertsOfMixedFormatsMatchReference) {
    auto b = make_vulkan();
    const std::vector<QuantSpec> mixed = {{DType::q4, 32}, {DType::q8, 16, DType::f32, true}, {DType::bf16},
                                          {DType::q4, 12, DType::f16, true, 4}};
    for (int64_t rows : {1, 3, 40}) {  // decode (per-pair gemv shaders) and prefill (tiled, up to 8 rows apart)
        run_moe(*b, mixed, {DType::q8, 32}, rows, 64, 48);
        run_moe(*b, {{DType::q4, 7}}, {DType::q4, 64, DType::bf16, true}, rows, 56, 24);
        run_moe(*b, {{DType::q8, 10, DType::bf16, true}}, {DType::f32}, rows, 45, 21);  // odd dims: element path
    }
}

TEST(VulkanQuant, MlaWithQuantizedProjectionsMatchesReference) {
    for (const char* kernel : {"heads", "per_head"}) {
        ScopedEnv env({{"HALO_VULKAN_MLA_KERNEL", kernel}});
        auto b = make_vulkan();
        for (const QuantSpec& q : {QuantSpec{DType::q4, 8}, QuantSpec{DType::q8, 12, DType::f32, true, 4},
                                   QuantSpec{DType::q4, 7, DType::f16}})
            run_mla(*b, q, 20, {1, 9}, 40);
    }
}

TEST(VulkanQuant, WeightsLargerThanOneBindingAreSplitWithTheirScales) {
    // 16 KiB bindings and 64 KiB allocations: a [1500, 128] Q4 weight (94 KiB of words plus its scales in the same
    // buffer) lies in several overlapping pieces and needs many row blocks; F32 scales with group 1 (256 bytes a
    // row) make the scales the tighter limit.
    ScopedEnv env({{"HALO_VULKAN_MAX_RANGE", "16384"}, {"HALO_VULKAN_MAX_PIECE", "65536"}});
    auto b = make_vulkan();
    for (int64_t rows : {1, 2}) run_linear(*b, {DType::q4, 16, DType::bf16, false, 0}, rows, 1500, 128);
    for (int64_t rows : {2, 5}) {
        run_linear(*b, {DType::q8, 1, DType::f32, false, 4}, rows, 300, 64);
        run_linear(*b, {DType::q4, 9, DType::f16, true, 0}, rows, 700, 72);
    }
    // Experts each in buffers of their own: 6 bindings per quantized expert, so several passes of 16.
    run_moe(*b, {{DType::q4, 16, DType::bf16, true}, {DType::q8, 8, DType::f32, true}}, {DType::q4, 32, DType::bf16, true},
            3, 64, 32);
}

TEST(VulkanQuant, FallbackPathsAndValidationLayerAgree) {
    // Without subgroups and push descriptors (the fallback paths), under the Khronos validation layer with
    // synchronisation validation: the scale bindings must be declared, bound and ordered like every other.
    ScopedEnv env({{"HALO_VULKAN_NO_SUBGROUP", "1"}, {"HALO_VULKAN_NO_PUSH_DESCRIPTORS", "1"}});
    BackendOptions o;
    o.validation = true;
    auto b = make_vulkan(o);
    for (int64_t rows : {1, 66}) {
        run_linear(*b, {DType::q4, 12, DType::bf16, true, 4}, rows, 40, 64);
        run_mlp(*b, {DType::q8, 16}, {DType::q4, 9, DType::f32}, rows, 48, 40);
    }
    for (int64_t rows : {2, 12}) run_moe(*b, {{DType::q4, 16}, {DType::q8, 8, DType::f16, true}}, {DType::q4, 32}, rows, 64, 32);
    run_mla(*b, {DType::q4, 8}, 20, {1, 9}, 40);
    b->synchronize();
    EXPECT_EQ(b->instance().validation_errors(), 0u) << b->instance().first_validation_error();
}

TEST(VulkanQuant, QuantizedWeightWithoutScalesIsRefusedWithASentence) {
    auto b = make_vulkan();
    Tensors t(*b);
    Weights w(*b);
    auto& wt = w.make({DType::q4, 32}, 16, 64, random_values(16 * 64, 1));
    Tensor bad = wt.vk;
    bad.scale.buffer = nullptr;
    auto& x = t.make(DType::f32, {1, 64}, random_values(64, 2), MemoryUse::scratch);
    auto& y = t.make(DType::f32, {1, 16}, {}, MemoryUse::scratch);
    try {
        b->linear({x.vk, bad, y.vk});
        FAIL() << "a Q4 weight without scales was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("linear weight"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("scale"), std::string::npos) << e.what();
    }
}

}  // namespace halo::test
