// Conformance of the glue ops (embedding, RMSNorm, add, linear, dense MLP) on every plugin.
//
// Tolerances (normalised error, max |plugin - reference| / rms(reference)): the reference accumulates in double;
// an F32 plugin's error on a dot product of length K is a few times sqrt(K) * 2^-24 relative to the terms' scale,
// below 1e-5 for K <= 2304. 1e-4 gives a 10x margin. Embedding and add are exact copies/sums in F32: 1e-6.
#include "ops/reference/reference.h"
#include "tests/ops/conformance.h"

namespace halo::test {

using namespace halo::ops;

namespace {

const Tensor& pick(const DualTensor& t, bool ref) { return ref ? t.ref : t.dev; }

const DType kWeightTypes[] = {DType::bf16, DType::f16, DType::f32};

TEST_P(Conformance, Embedding) {
    for (DType dt : kWeightTypes)
        for (int64_t width : {33, 64}) {
            OpHarness h(plugin());
            Values v(1);
            auto& table = h.input("table", dt, {37, width}, v.normal(37 * width));
            auto& ids = h.input_ids("ids", {0, 36, 5, 5, 17, 2, 36});
            auto& out = h.output("out", {7, width});
            run_case(std::string("embedding/") + dtype_name(dt), h, [&](Backend& b, bool ref) {
                EmbeddingParams p{pick(table, ref), pick(ids, ref), pick(out, ref)};
                ref ? halo::ref::embedding(p) : b.embedding(p);
            }, {&out}, 1e-6);
        }
}

TEST_P(Conformance, RmsNorm) {
    for (DType dt : kWeightTypes)
        for (int64_t rows : {1, 17})
            for (int64_t width : {33, 2304}) {
                OpHarness h(plugin());
                Values v(2);
                auto& x = h.input("x", DType::f32, {rows, width}, v.normal(rows * width, 3.0f, 0.5f), MemoryUse::scratch);
                auto& w = h.input("w", dt, {width}, v.normal(width, 0.2f, 1.0f));
                auto& out = h.output("out", {rows, width});
                run_case("rms_norm", h, [&](Backend& b, bool ref) {
                    RmsNormParams p{pick(x, ref), pick(w, ref), pick(out, ref), 1e-5f};
                    ref ? halo::ref::rms_norm(p) : b.rms_norm(p);
                }, {&out}, 1e-5);
                // In place: out aliases x.
                run_case("rms_norm/in_place", h, [&](Backend& b, bool ref) {
                    RmsNormParams p{pick(x, ref), pick(w, ref), pick(x, ref), 1e-6f};
                    ref ? halo::ref::rms_norm(p) : b.rms_norm(p);
                }, {&x}, 1e-5);
            }
}

TEST_P(Conformance, Add) {
    OpHarness h(plugin());
    Values v(3);
    auto& a = h.input("a", DType::f32, {5, 67}, v.normal(5 * 67), MemoryUse::scratch);
    auto& bb = h.input("b", DType::f32, {5, 67}, v.normal(5 * 67), MemoryUse::scratch);
    auto& out = h.output("out", {5, 67});
    run_case("add", h, [&](Backend& b, bool ref) {
        AddParams p{pick(a, ref), pick(bb, ref), pick(out, ref)};
        ref ? halo::ref::add(p) : b.add(p);
    }, {&out}, 1e-6);
    run_case("add/in_place", h, [&](Backend& b, bool ref) {
        AddParams p{pick(a, ref), pick(bb, ref), pick(a, ref)};
        ref ? halo::ref::add(p) : b.add(p);
    }, {&a}, 1e-6);
}

TEST_P(Conformance, Linear) {
    // Rows cover the matrix-vector shapes (1..4), the packed shapes and their edges; N and K are odd on purpose.
    for (DType dt : kWeightTypes)
        for (int64_t rows : {1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 200})
            for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 33}, {129, 257}, {96, 2304}}) {
                if (rows > 17 && n * k > 40000) continue;  // keep the reference's double loops quick
                OpHarness h(plugin());
                Values v(uint64_t(rows * 1000 + n));
                auto& x = h.input("x", DType::f32, {rows, k}, v.normal(rows * k), MemoryUse::scratch);
                auto& w = h.input("w", dt, {n, k}, v.normal(n * k, 1.0f / std::sqrt(float(k))));
                auto& y = h.output("y", {rows, n});
                run_case(std::string("linear/") + dtype_name(dt) + "/" + std::to_string(rows) + "x" + std::to_string(n) +
                             "x" + std::to_string(k),
                         h, [&](Backend& b, bool ref) {
                             LinearParams p{pick(x, ref), pick(w, ref), pick(y, ref)};
                             ref ? halo::ref::linear(p) : b.linear(p);
                         }, {&y}, 1e-4);
            }
}

TEST_P(Conformance, LinearMisalignedWeights) {
    // Weights that start off a 64-byte boundary, as a checkpoint mapped in place gives them: rows whose length is a
    // multiple of 64 bytes (all rows start equally far off a line) and rows that are not (each starts elsewhere).
    for (DType dt : kWeightTypes)
        for (uint64_t shift : {2, 24, 40})
            for (int64_t rows : {1, 2, 3, 4, 5, 33})
                for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 64}, {21, 2304}, {19, 33}}) {
                    if (shift % dtype_size(dt) != 0) continue;
                    OpHarness h(plugin());
                    h.misalign_weights(shift);
                    Values v(uint64_t(rows * 1000 + n + shift));
                    auto& x = h.input("x", DType::f32, {rows, k}, v.normal(rows * k), MemoryUse::scratch);
                    auto& w = h.input("w", dt, {n, k}, v.normal(n * k, 1.0f / std::sqrt(float(k))));
                    auto& y = h.output("y", {rows, n});
                    run_case(std::string("linear/misaligned/") + dtype_name(dt) + "/+" + std::to_string(shift) + "/" +
                                 std::to_string(rows) + "x" + std::to_string(n) + "x" + std::to_string(k),
                             h, [&](Backend& b, bool ref) {
                                 LinearParams p{pick(x, ref), pick(w, ref), pick(y, ref)};
                                 ref ? halo::ref::linear(p) : b.linear(p);
                             }, {&y}, 1e-4);
                }
}

TEST_P(Conformance, DenseMlp) {
    struct Shape {
        int64_t rows, D, I;
        std::vector<int32_t> runs;  // the step's run lengths, as the engine passes them (empty: no batch)
    };
    // Rows of unknown origin, then prompt chunks (runs of more than a few tokens, which a plugin may send through
    // its prompt kernel) with odd widths and a reduction past one 256-wide block, beside decode rows.
    const std::vector<Shape> shapes = {{1, 40, 72, {}}, {3, 40, 72, {}}, {17, 40, 72, {}}, {65, 40, 72, {}},
                                       {65, 40, 72, {65}}, {70, 33, 301, {1, 69}}, {130, 264, 40, {2, 3, 125}}};
    for (DType dt : kWeightTypes)
        for (const Shape& sh : shapes) {
            const int64_t rows = sh.rows, D = sh.D, I = sh.I;
            const StepRuns step(sh.runs);
            OpHarness h(plugin());
            Values v{static_cast<uint64_t>(rows)};
            auto& x = h.input("x", DType::f32, {rows, D}, v.normal(rows * D), MemoryUse::scratch);
            auto& g = h.input("gate", dt, {I, D}, v.normal(I * D, 0.3f));
            auto& u = h.input("up", dt, {I, D}, v.normal(I * D, 0.3f));
            auto& d = h.input("down", dt, {D, I}, v.normal(D * I, 0.2f));
            auto& out = h.output("out", {rows, D});
            std::string name = std::string("mlp/") + dtype_name(dt) + "/" + std::to_string(rows) + "x" +
                               std::to_string(D) + "x" + std::to_string(I);
            for (int32_t n : sh.runs) name += "/run" + std::to_string(n);
            run_case(name, h, [&](Backend& b, bool ref) {
                MlpParams p{pick(x, ref), pick(g, ref), pick(u, ref), pick(d, ref), pick(out, ref)};
                if (!sh.runs.empty()) p.batch = &step.batch;
                ref ? halo::ref::mlp(p) : b.mlp(p);
            }, {&out}, 1e-4);
        }
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Plugins, Conformance, ::testing::ValuesIn(conformance_plugins()),
                         [](const auto& info) { return info.param; });

}  // namespace halo::test
