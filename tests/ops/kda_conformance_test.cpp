// Conformance of KDA on every plugin, against the reference's token-by-token recurrence (the definition).
//
// Cases: token runs of 1, 15, 16, 17, 63, 64, 65 and 200 (chunk edges at 16 and 64), several sequences of
// different lengths in one batch with scattered state slots, non-zero initial states and conv histories, strong
// decay (log decay down to about -80 per token) mixed with weak decay, odd head counts/widths and conv widths, a
// head wider than 128 (150), each evaluated in the plugin's recurrent, chunked (chunk 16 and 64) and automatic forms.
//
// Tolerance 1e-4 normalised (max |plugin - reference| / rms(reference)): the F32 state is rounded once per token
// in both implementations, and the F32 projections add about 1e-6 each; over 200 tokens the observed error stays
// below 1e-5, so 1e-4 is a 10x margin that still catches any wrong term (the smallest convention errors in the
// golden README move outputs by more than 1e-3 relative).
#include <algorithm>
#include <numeric>

#include "ops/reference/reference.h"
#include "tests/ops/conformance.h"

namespace halo::test {

using namespace halo::ops;

namespace {

const Tensor& pick(const DualTensor& t, bool ref) { return ref ? t.ref : t.dev; }

struct KdaCase {
    int H = 2, K = 16, hidden = 40, W = 4;
    std::vector<int> runs;
    bool nonzero_state = true;
    bool strong_decay = false;
    DType wdt = DType::bf16;
    WeightSpec proj{DType::f32};  // a quantized format here quantizes the nine projections (f32: use wdt)
};

void run_kda_case(Conformance& fx, Backend& plugin, const KdaCase& c, KdaForm form, int chunk,
                  const std::function<void(const std::string&, OpHarness&, const std::function<void(Backend&, bool)>&,
                                           const std::vector<const DualTensor*>&, double)>& run_case) {
    const int64_t H = c.H, K = c.K, D = H * K, hidden = c.hidden, W = c.W;
    const int64_t rows = std::accumulate(c.runs.begin(), c.runs.end(), int64_t(0));
    const int64_t slots = int64_t(c.runs.size()) + 2;
    OpHarness h(plugin);
    Values v(uint64_t(rows * 7 + H * 13 + K));
    const float ws = 1.0f / std::sqrt(float(hidden));
    const WeightSpec pw = is_quantized(c.proj.dtype) ? c.proj : WeightSpec{c.wdt};
    auto& q_proj = weight(h, "q_proj", pw, {D, hidden}, v.normal(D * hidden, ws));
    auto& k_proj = weight(h, "k_proj", pw, {D, hidden}, v.normal(D * hidden, ws));
    auto& v_proj = weight(h, "v_proj", pw, {D, hidden}, v.normal(D * hidden, ws));
    auto& q_conv = h.input("q_conv", c.wdt, {D, 1, W}, v.normal(D * W, 0.5f));
    auto& k_conv = h.input("k_conv", c.wdt, {D, 1, W}, v.normal(D * W, 0.5f));
    auto& v_conv = h.input("v_conv", c.wdt, {D, 1, W}, v.normal(D * W, 0.5f));
    auto& f_a = weight(h, "f_a", pw, {K, hidden}, v.normal(K * hidden, ws));
    auto& f_b = weight(h, "f_b", pw, {D, K}, v.normal(D * K, 1.0f / std::sqrt(float(K))));
    std::vector<float> dt = v.uniform(D, -6.0f, -2.0f), alog = v.uniform(H, 0.0f, 2.7f);
    if (c.strong_decay)  // half the channels decay by up to ~exp(-80) per token
        for (int64_t i = 0; i < D; i += 2) dt[size_t(i)] = 5.0f;
    auto& dt_bias = h.input("dt_bias", DType::f32, {D}, dt);
    auto& a_log = h.input("a_log", DType::f32, {1, 1, H, 1}, alog);
    auto& b_proj = weight(h, "b_proj", pw, {H, hidden}, v.normal(H * hidden, ws));
    auto& g_a = weight(h, "g_a", pw, {K, hidden}, v.normal(K * hidden, ws));
    auto& g_b = weight(h, "g_b", pw, {D, K}, v.normal(D * K, 1.0f / std::sqrt(float(K))));
    auto& o_norm = h.input("o_norm", c.wdt, {K}, v.normal(K, 0.1f, 1.0f));
    auto& o_proj = weight(h, "o_proj", pw, {hidden, D}, v.normal(hidden * D, 1.0f / std::sqrt(float(D))));
    auto& x = h.input("x", DType::f32, {rows, hidden}, v.normal(rows * hidden), MemoryUse::scratch);
    auto& out = h.output("out", {rows, hidden});
    auto& state = h.inout("state", DType::f32, {slots, H, K, K},
                          c.nonzero_state ? v.normal(slots * H * K * K, 0.3f) : std::vector<float>(size_t(slots * H * K * K)),
                          MemoryUse::state);
    auto& conv = h.inout("conv_state", DType::f32, {slots, 3, W - 1, D},
                         c.nonzero_state ? v.normal(slots * 3 * (W - 1) * D) : std::vector<float>(size_t(slots * 3 * (W - 1) * D)),
                         MemoryUse::state);
    // Runs use scattered slots (reverse order, skipping slot 0).
    StepRuns step(c.runs);
    for (size_t i = 0; i < step.runs.size(); ++i) {
        step.runs[i].slot = int32_t(slots - 1 - int64_t(i));
        step.runs[i].pos = c.nonzero_state ? 9 : 0;
    }
    const SeqBatch& batch = step.batch;
    std::string name = "kda/H" + std::to_string(H) + "K" + std::to_string(K) + "W" + std::to_string(W) + "/runs";
    for (int n : c.runs) name += "_" + std::to_string(n);
    name += std::string("/") + (form == KdaForm::recurrent ? "recurrent" : form == KdaForm::chunked ? "chunked" : "auto") +
            std::to_string(chunk) + (c.strong_decay ? "/strong" : "") + (c.nonzero_state ? "/state" : "") + "/" +
            dtype_name(c.wdt) + (is_quantized(c.proj.dtype) ? "/proj_" + c.proj.name() : "");
    run_case(name, h, [&](Backend& b, bool ref) {
        KdaParams p;
        p.w = {pick(q_proj, ref), pick(k_proj, ref), pick(v_proj, ref), pick(q_conv, ref), pick(k_conv, ref),
               pick(v_conv, ref), pick(f_a, ref), pick(f_b, ref), pick(dt_bias, ref), pick(a_log, ref),
               pick(b_proj, ref), pick(g_a, ref), pick(g_b, ref), pick(o_norm, ref), pick(o_proj, ref)};
        p.n_heads = int32_t(H);
        p.head_dim = int32_t(K);
        p.conv_width = int32_t(W);
        p.norm_eps = 1e-5f;
        p.form = ref ? KdaForm::recurrent : form;
        p.chunk_size = chunk;
        p.x = pick(x, ref);
        p.out = pick(out, ref);
        p.state = pick(state, ref);
        p.conv_state = pick(conv, ref);
        ref ? halo::ref::kda(p, batch) : b.kda(p, batch);
    }, {&out, &state, &conv}, 1e-4);
    (void)fx;
}

TEST_P(Conformance, KdaTokenRuns) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (int n : {1, 15, 16, 17, 63, 64, 65, 200}) {
        KdaCase c;
        c.runs = {n};
        for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}, {KdaForm::chunked, 64},
                                   {KdaForm::automatic, 64}})
            run_kda_case(*this, plugin(), c, form, chunk, rc);
    }
}

TEST_P(Conformance, KdaBatchOfSequences) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    KdaCase c;
    c.runs = {5, 64, 1, 17, 33};
    for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}, {KdaForm::automatic, 64}})
        run_kda_case(*this, plugin(), c, form, chunk, rc);
    c.nonzero_state = false;
    run_kda_case(*this, plugin(), c, KdaForm::automatic, 64, rc);
}

TEST_P(Conformance, KdaStrongDecay) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    KdaCase c;
    c.runs = {65, 3};
    c.strong_decay = true;
    for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}, {KdaForm::chunked, 64}})
        run_kda_case(*this, plugin(), c, form, chunk, rc);
}

TEST_P(Conformance, KdaOddDimensionsAndDtypes) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType dt : {DType::f16, DType::f32}) {
        KdaCase c;
        c.H = 3;
        c.K = 20;
        c.hidden = 37;
        c.W = 3;
        c.wdt = dt;
        c.runs = {17, 1, 40};
        for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}})
            run_kda_case(*this, plugin(), c, form, chunk, rc);
    }
    KdaCase real;  // the real head width
    real.H = 2;
    real.K = 128;
    real.hidden = 64;
    real.runs = {1, 65};
    for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 64}})
        run_kda_case(*this, plugin(), real, form, chunk, rc);
    KdaCase wide;  // a head wider than 128: a kernel that takes the state's columns in blocks ends on a partial one
    wide.H = 1;
    wide.K = 150;
    wide.hidden = 33;
    wide.runs = {1, 2, 20};
    for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}})
        run_kda_case(*this, plugin(), wide, form, chunk, rc);
}

TEST_P(Conformance, KdaQuantizedProjections) {
    // q/k/v, f_a/f_b, b, g_a/g_b and o projections quantized (convs, norms, A_log and dt_bias stay float, as in a
    // compressed-tensors checkpoint). hidden = 40 with group 32 leaves a partial group; f_b and g_b ([D, K = 16])
    // are a single partial group; the odd case has widths that end in partial words.
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType fmt : {DType::q4, DType::q8}) {
        KdaCase c;
        c.runs = {1, 17, 33};
        c.proj = WeightSpec{fmt, 32};
        for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}, {KdaForm::automatic, 64}})
            run_kda_case(*this, plugin(), c, form, chunk, rc);
        KdaCase decode;  // one token of one sequence: the decode path
        decode.runs = {1};
        decode.proj = WeightSpec{fmt, 32};
        run_kda_case(*this, plugin(), decode, KdaForm::automatic, 64, rc);
    }
    KdaCase odd;
    odd.H = 3;
    odd.K = 20;
    odd.hidden = 37;
    odd.W = 3;
    odd.runs = {17, 1, 40};
    odd.proj = WeightSpec{DType::q4, 16};
    for (auto [form, chunk] : {std::pair{KdaForm::recurrent, 64}, {KdaForm::chunked, 16}})
        run_kda_case(*this, plugin(), odd, form, chunk, rc);
}

}  // namespace

}  // namespace halo::test
