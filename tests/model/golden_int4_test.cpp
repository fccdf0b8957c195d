// Whole-model goldens for quantized weights, on every plugin: ../shared/golden/tiny-int4 (the tiny model with its
// routed experts in compressed-tensors pack-quantized int4, group 32; logits computed in float64 on the exactly
// dequantized weights). A plugin that dequantizes exactly matches to float32 rounding; the README measured the
// float32 reference at 5.5e-6 from float64, so the 1e-4 tolerance of the float golden applies unchanged. The
// quantization error itself is large by design (1.6 on the logits), so matching the BF16 golden instead fails.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/npy.h"
#include "core/sampler.h"
#include "tests/model/golden_support.h"
#include "tests/support/plugins.h"

namespace halo::test {

namespace {

constexpr float kLogitTol = 1e-4f;

class GoldenInt4 : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        dir_ = golden_dir() + "/tiny-int4";
        backend_ = load_plugin(GetParam());
        prompt_ = json_ids(dir_ + "/prompt.json");
    }
    std::unique_ptr<Model> make(const std::string& dir, ModelOptions o = {}) {
        o.max_context = 128;
        o.page_size = 16;
        return std::make_unique<Model>(backend_->backend(), dir, o);
    }
    std::vector<float> prefill_all(Model& m) {
        Sequence s;
        m.begin_sequence(s);
        std::vector<float> out = m.prefill(s, prompt_, true);
        m.end_sequence(s);
        return out;
    }
    std::string dir_;
    std::unique_ptr<LoadedBackend> backend_;
    std::vector<int32_t> prompt_;
};

TEST_P(GoldenInt4, CheckpointLoadsAsQuantizedTensors) {
    auto m = make(dir_);
    EXPECT_EQ(m->config().quant.present, true);
    // Weights hold packed words plus scales: far fewer bytes than the BF16 tiny model's experts would take.
    auto bf16 = make(golden_dir() + "/tiny");
    EXPECT_LT(m->plan().bytes[0], bf16->plan().bytes[0]);
    EXPECT_TRUE(m->unused_tensors().empty()) << m->unused_tensors().front();
}

TEST_P(GoldenInt4, PromptLogitsMatchAndDifferFromBf16) {
    auto m = make(dir_);
    const auto got = prefill_all(*m);
    EXPECT_LE(max_abs_diff(got, read_npy(dir_ + "/logits.npy").as_floats()), kLogitTol);
    // Not the BF16 model: the int4 experts move the logits by up to 1.6.
    EXPECT_GT(max_abs_diff(got, read_npy(golden_dir() + "/tiny/logits.npy").as_floats()), 0.5f);
}

TEST_P(GoldenInt4, GreedyDecodeMatchesAndTeacherForcedLogits) {
    for (auto form : {ops::MlaForm::automatic, ops::MlaForm::absorbed, ops::MlaForm::expanded}) {
        ModelOptions o;
        o.mla_form = form;
        auto m = make(dir_, o);
        const auto want_ids = json_ids(dir_ + "/greedy.json");
        const auto want_logits = read_npy(dir_ + "/greedy_logits.npy").as_floats();
        const int64_t V = m->config().vocab_size;
        Sequence s;
        m->begin_sequence(s);
        std::vector<float> logits = m->prefill(s, prompt_, false);
        std::vector<int32_t> got;
        for (size_t j = 0; j < want_ids.size(); ++j) {
            std::vector<float> want_row(want_logits.begin() + long(j * size_t(V)),
                                        want_logits.begin() + long((j + 1) * size_t(V)));
            EXPECT_LE(max_abs_diff(logits, want_row), kLogitTol) << "decode step " << j << " mla form " << int(form);
            got.push_back(argmax(logits.data(), V));
            logits.clear();
            StepItem it{&s, std::span<const int32_t>(&got.back(), 1), LogitRows::last};
            m->step(std::span<const StepItem>(&it, 1), logits);
        }
        EXPECT_EQ(got, want_ids) << "mla form " << int(form);
    }
}

TEST_P(GoldenInt4, QuantizingTheBf16ModelAtLoadGivesTheSameModel) {
    // The golden's int4 weights were made from ../tiny by the compressed-tensors min-max recipe, which load-time
    // quantization follows: the same packed words and scales, so the same logits.
    ModelOptions o;
    o.quantize.experts = ops::DType::q4;
    o.quantize.group = 32;
    auto m = make(golden_dir() + "/tiny", o);
    EXPECT_EQ(m->plan().quantized_at_load, 3u * 8u * 3u);
    EXPECT_LE(max_abs_diff(prefill_all(*m), read_npy(dir_ + "/logits.npy").as_floats()), kLogitTol);
}

TEST_P(GoldenInt4, BatchedAndStepwiseRunsMatchTheGolden) {
    ModelOptions o;
    o.max_sequences = 2;
    auto m = make(dir_, o);
    const auto want = read_npy(dir_ + "/logits.npy").as_floats();
    const int64_t V = m->config().vocab_size;
    // a: the prompt one token per step; b: chunks of 23, in the same steps.
    Sequence a, b;
    m->begin_sequence(a);
    m->begin_sequence(b);
    std::vector<float> la, lb;
    for (size_t pa = 0, pb = 0; pa < prompt_.size() || pb < prompt_.size();) {
        const size_t na = std::min<size_t>(1, prompt_.size() - pa), nb = std::min<size_t>(23, prompt_.size() - pb);
        std::vector<StepItem> items;
        if (na) items.push_back({&a, std::span<const int32_t>(prompt_).subspan(pa, na), LogitRows::all});
        if (nb) items.push_back({&b, std::span<const int32_t>(prompt_).subspan(pb, nb), LogitRows::all});
        std::vector<float> out;
        m->step(items, out);
        la.insert(la.end(), out.begin(), out.begin() + long(na * size_t(V)));
        lb.insert(lb.end(), out.begin() + long(na * size_t(V)), out.end());
        pa += na;
        pb += nb;
    }
    EXPECT_LE(max_abs_diff(la, want), kLogitTol);
    EXPECT_LE(max_abs_diff(lb, want), kLogitTol);
}

INSTANTIATE_TEST_SUITE_P(Plugins, GoldenInt4, ::testing::ValuesIn(plugins_under_test()),
                         [](const auto& info) { return info.param; });

}  // namespace

}  // namespace halo::test
