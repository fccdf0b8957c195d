// Conformance of MLA on every plugin, against the reference's expanded form (per-head keys and values).
//
// Cases: token runs of 1, 15, 16, 17, 63, 64, 65 and 200, with and without cached history, several sequences in
// one batch with scattered (shuffled) page tables, pages of 16 tokens, odd head counts and widths, F32/F16/BF16
// caches, contexts of over 1000 tokens, in the plugin's expanded, absorbed and automatic forms.
//
// Tolerance: 1e-4 normalised with an F32 cache (F32 products and softmax over at most ~240 positions; observed
// errors are about 1e-6). With an F16/BF16 cache the plugin and the reference round the same latents, but a value
// computed in F32 vs double can land on the other side of a rounding boundary: one ulp of BF16 is 2^-8 relative,
// so such cases use 1e-2 (F16: 2e-3).
#include <algorithm>
#include <numeric>
#include <random>

#include "ops/reference/reference.h"
#include "tests/ops/conformance.h"

namespace halo::test {

using namespace halo::ops;

namespace {

const Tensor& pick(const DualTensor& t, bool ref) { return ref ? t.ref : t.dev; }

struct MlaCase {
    int H = 2, dn = 16, dr = 8, dv = 16, r = 32, hidden = 48;
    std::vector<int> runs;
    int history = 0;  // tokens already cached for every sequence
    DType cache = DType::f32;
    DType wdt = DType::bf16;
    WeightSpec proj{DType::f32};  // a quantized format here quantizes q_proj, kv_a, kv_b and o_proj (f32: use wdt)
};

// Odd sizes (3 heads, widths 12/5/10 per head, rank 24, hidden 37): runs of 9 and 1 tokens after 5 cached.
MlaCase odd_mla_case() {
    return {.H = 3, .dn = 12, .dr = 5, .dv = 10, .r = 24, .hidden = 37, .runs = {9, 1}, .history = 5};
}

using RunCase = std::function<void(const std::string&, OpHarness&, const std::function<void(Backend&, bool)>&,
                                   const std::vector<const DualTensor*>&, double)>;

void run_mla(Backend& plugin, const MlaCase& c, MlaForm form, const RunCase& rc) {
    const int64_t H = c.H, dq = c.dn + c.dr, dkv = c.dn + c.dv, width = c.r + c.dr, hidden = c.hidden;
    const int64_t rows = std::accumulate(c.runs.begin(), c.runs.end(), int64_t(0));
    const int32_t ps = 16;
    int64_t pages_needed = 0;
    for (int n : c.runs) pages_needed += (c.history + n + ps - 1) / ps;
    const int64_t pages = pages_needed + 3;
    OpHarness h(plugin);
    Values v(uint64_t(rows * 31 + c.history + H));
    const float ws = 1.0f / std::sqrt(float(hidden));
    const WeightSpec pw = is_quantized(c.proj.dtype) ? c.proj : WeightSpec{c.wdt};
    auto& q_proj = weight(h, "q_proj", pw, {H * dq, hidden}, v.normal(H * dq * hidden, ws));
    auto& kv_a = weight(h, "kv_a", pw, {width, hidden}, v.normal(width * hidden, ws));
    auto& kv_norm = h.input("kv_a_norm", c.wdt, {c.r}, v.normal(c.r, 0.1f, 1.0f));
    auto& kv_b = weight(h, "kv_b", pw, {H * dkv, c.r}, v.normal(H * dkv * c.r, 1.0f / std::sqrt(float(c.r))));
    auto& o_proj = weight(h, "o_proj", pw, {hidden, H * c.dv}, v.normal(hidden * H * c.dv, 1.0f / std::sqrt(float(H * c.dv))));
    auto& x = h.input("x", DType::f32, {rows, hidden}, v.normal(rows * hidden), MemoryUse::scratch);
    auto& out = h.output("out", {rows, hidden});
    auto& cache = h.inout("cache", c.cache, {pages, ps, width}, v.normal(pages * ps * width), MemoryUse::cache);
    // Shuffled page tables: sequence i gets a scattered set of pages.
    std::vector<int32_t> perm(static_cast<size_t>(pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), v.rng());
    std::vector<std::vector<int32_t>> tables;
    size_t next_page = 0;
    for (int n : c.runs) {
        const int64_t need = (c.history + n + ps - 1) / ps;
        tables.emplace_back(perm.begin() + long(next_page), perm.begin() + long(next_page + size_t(need)));
        next_page += size_t(need);
    }
    StepRuns step(c.runs);
    for (size_t i = 0; i < step.runs.size(); ++i) {
        SeqRun& s = step.runs[i];
        s.slot = 0;
        s.pos = c.history;
        s.pages = tables[i].data();
        s.n_pages = int32_t(tables[i].size());
    }
    const SeqBatch& b = step.batch;
    std::string name = "mla/H" + std::to_string(H) + "/runs";
    for (int n : c.runs) name += "_" + std::to_string(n);
    name += "/hist" + std::to_string(c.history) + "/cache_" + dtype_name(c.cache) + "/" + dtype_name(c.wdt) +
            (is_quantized(c.proj.dtype) ? "/proj_" + c.proj.name() : "") +
            (form == MlaForm::expanded ? "/expanded" : form == MlaForm::absorbed ? "/absorbed" : "/auto");
    const double tol = c.cache == DType::bf16 ? 1e-2 : c.cache == DType::f16 ? 2e-3 : 1e-4;
    rc(name, h, [&](Backend& be, bool ref) {
        MlaParams p;
        p.w = {pick(q_proj, ref), pick(kv_a, ref), pick(kv_norm, ref), pick(kv_b, ref), pick(o_proj, ref)};
        p.n_heads = int32_t(H);
        p.qk_nope_dim = c.dn;
        p.qk_rope_dim = c.dr;
        p.v_dim = c.dv;
        p.kv_lora_rank = c.r;
        p.kv_norm_eps = 1e-5f;
        p.softmax_scale = float(1.0 / std::sqrt(double(dq)));
        p.form = ref ? MlaForm::expanded : form;
        p.x = pick(x, ref);
        p.out = pick(out, ref);
        p.cache = pick(cache, ref);
        p.page_size = ps;
        ref ? halo::ref::mla(p, b) : be.mla(p, b);
    }, {&out, &cache}, tol);
}

TEST_P(Conformance, Mla) {
    std::vector<MlaCase> cases;
    for (int n : {1, 15, 16, 17, 63, 64, 65, 200})
        for (int hist : {0, 37}) {
            MlaCase c;
            c.runs = {n};
            c.history = hist;
            cases.push_back(c);
        }
    MlaCase batch;
    batch.runs = {1, 17, 64, 3};
    batch.history = 21;
    cases.push_back(batch);
    MlaCase odd = odd_mla_case();
    for (DType wdt : {DType::f16, DType::f32}) {
        odd.wdt = wdt;
        cases.push_back(odd);
    }
    for (DType cache : {DType::bf16, DType::f16}) {
        MlaCase c;
        c.runs = {1, 20};
        c.history = 30;
        c.cache = cache;
        cases.push_back(c);
    }
    // Contexts long enough for a plugin to split a row's positions over several tasks and combine them (the CPU
    // plugin splits at 512): a decode token and a short run after 1100 cached tokens, 33 heads (two blocks of 32
    // query rows and one of 1 for the CPU's absorbed kernels).
    MlaCase long_context;
    long_context.runs = {1, 3};
    long_context.history = 1100;
    cases.push_back(long_context);
    long_context.H = 33;
    long_context.runs = {1};
    long_context.cache = DType::bf16;
    cases.push_back(long_context);

    auto rc = [this](auto&&... a) { run_case(a...); };
    for (const MlaCase& c : cases)
        for (MlaForm form : {MlaForm::expanded, MlaForm::absorbed, MlaForm::automatic}) run_mla(plugin(), c, form, rc);
}

TEST_P(Conformance, MlaQuantized) {
    // q_proj, kv_a_proj_with_mqa, kv_b_proj and o_proj quantized (kv_a_layernorm stays float), in the expanded,
    // absorbed and automatic forms: the absorbed form reads kv_b per head as two blocks, which a plugin must
    // dequantize at the right rows and groups. Decode (one token with history), a prefill run, a batch, and odd
    // widths (hidden 37, rank 24: partial groups and words).
    auto rc = [this](auto&&... a) { run_case(a...); };
    std::vector<MlaCase> cases;
    for (DType fmt : {DType::q4, DType::q8}) {
        for (int n : {1, 17}) {
            MlaCase c;
            c.runs = {n};
            c.history = 37;
            c.proj = WeightSpec{fmt, 32};
            cases.push_back(c);
        }
        MlaCase batch;
        batch.runs = {1, 17, 3};
        batch.history = 21;
        batch.proj = WeightSpec{fmt, 16};
        cases.push_back(batch);
    }
    MlaCase odd = odd_mla_case();
    odd.proj = WeightSpec{DType::q4, 48};
    cases.push_back(odd);
    for (const MlaCase& c : cases)
        for (MlaForm form : {MlaForm::expanded, MlaForm::absorbed, MlaForm::automatic}) run_mla(plugin(), c, form, rc);
}

}  // namespace

}  // namespace halo::test
