// Conformance of linear and the dense MLP with quantized weights (q4 / q8, compressed-tensors pack-quantized) on
// every plugin, against the reference, which dequantizes exactly (ops::weight_at).
//
// Cases: both formats; groups of 32, 128 and 48 (48 leaves a partial last group, and a group larger than the row
// leaves a single partial one); input widths that are not a multiple of the 8 (q4) or 4 (q8) elements of a word,
// so the last word of a row is partial; 1, 3, 17 and 70 rows (few-row and packed kernels); F16 and F32 scales.
//
// Tolerance: the same 1e-4 normalised as the float cases (see glue_conformance_test.cpp). q * scale is exact in
// F32, so a plugin that dequantizes correctly differs from the reference only by F32 accumulation; a wrong nibble,
// scale or group boundary moves the output by far more (one quantization step is ~1/15 of a group's range).
#include <cmath>

#include "ops/reference/reference.h"
#include "tests/ops/conformance.h"

namespace halo::test {

using namespace halo::ops;

namespace {

const Tensor& pick(const DualTensor& t, bool ref) { return ref ? t.ref : t.dev; }

void linear_case(Conformance& fx, OpHarness& h, const WeightSpec& ws, int64_t rows, int64_t n, int64_t k,
                 const std::function<void(const std::string&, OpHarness&, const std::function<void(Backend&, bool)>&,
                                          const std::vector<const DualTensor*>&, double)>& run_case) {
    Values v(uint64_t(rows * 1000 + n * 7 + k));
    auto& x = h.input("x", DType::f32, {rows, k}, v.normal(rows * k), MemoryUse::scratch);
    auto& w = weight(h, "w", ws, {n, k}, v.normal(n * k, 1.0f / std::sqrt(float(k))));
    auto& y = h.output("y", {rows, n});
    run_case("linear/" + ws.name() + "/" + std::to_string(rows) + "x" + std::to_string(n) + "x" + std::to_string(k), h,
             [&](Backend& b, bool ref) {
                 LinearParams p{pick(x, ref), pick(w, ref), pick(y, ref)};
                 ref ? halo::ref::linear(p) : b.linear(p);
             },
             {&y}, 1e-4);
    (void)fx;
}

TEST_P(Conformance, LinearQuantized) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType fmt : {DType::q4, DType::q8})
        for (int32_t group : {32, 128, 48})
            for (int64_t rows : {1, 3, 17, 70})
                // [N, K]: K a multiple of every group but 48; K = 200 ends in partial groups; K = 45 ends in a
                // partial word for both formats (and is a single partial group of 48 or 128).
                for (auto [n, k] : {std::pair<int64_t, int64_t>{64, 256}, {37, 200}, {29, 45}}) {
                    OpHarness h(plugin());
                    linear_case(*this, h, WeightSpec{fmt, group}, rows, n, k, rc);
                }
}

TEST_P(Conformance, LinearQuantizedScaleTypes) {
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType fmt : {DType::q4, DType::q8})
        for (DType sdt : {DType::f16, DType::f32})
            for (int64_t rows : {1, 17}) {
                OpHarness h(plugin());
                linear_case(*this, h, WeightSpec{fmt, 32, sdt}, rows, 33, 100, rc);
            }
}

TEST_P(Conformance, LinearQuantizedRealWidth) {
    // The real model's hidden width (2304 = 72 groups of 32) at decode and prefill row counts.
    auto rc = [this](auto&&... a) { run_case(a...); };
    for (DType fmt : {DType::q4, DType::q8})
        for (int64_t rows : {1, 17}) {
            OpHarness h(plugin());
            linear_case(*this, h, WeightSpec{fmt, 32}, rows, 24, 2304, rc);
        }
}

TEST_P(Conformance, DenseMlpQuantized) {
    for (DType fmt : {DType::q4, DType::q8})
        for (int32_t group : {32, 48})
            for (int64_t rows : {1, 3, 17, 70}) {
                const int64_t D = 40, I = 72;
                const WeightSpec ws{fmt, group};
                OpHarness h(plugin());
                Values v{static_cast<uint64_t>(rows + 100 * group)};
                auto& x = h.input("x", DType::f32, {rows, D}, v.normal(rows * D), MemoryUse::scratch);
                auto& g = weight(h, "gate", ws, {I, D}, v.normal(I * D, 0.3f));
                auto& u = weight(h, "up", ws, {I, D}, v.normal(I * D, 0.3f));
                auto& d = weight(h, "down", ws, {D, I}, v.normal(D * I, 0.2f));
                auto& out = h.output("out", {rows, D});
                run_case("mlp/" + ws.name() + "/rows" + std::to_string(rows), h, [&](Backend& b, bool ref) {
                    MlpParams p{pick(x, ref), pick(g, ref), pick(u, ref), pick(d, ref), pick(out, ref)};
                    ref ? halo::ref::mlp(p) : b.mlp(p);
                }, {&out}, 1e-4);
            }
}

}  // namespace

}  // namespace halo::test
