// The recording model on the tiny golden model: one command buffer (one submission) per forward step, barriers
// only between dependent dispatches, and a clean run under the Khronos validation layer with synchronisation
// validation (which must also catch the hazards when barriers are turned off).
#include "core/model.h"
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "tests/support/plugins.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

constexpr float kLogitTol = 1e-4f;  // the golden tolerance (see tests/model/golden_test.cpp)

std::vector<int32_t> prompt_ids() {
    std::ifstream f(golden_dir() + "/tiny/prompt.json");
    return nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    float m = a.size() == b.size() ? 0.0f : INFINITY;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        m = std::max(m, std::isfinite(a[i]) ? std::fabs(a[i] - b[i]) : INFINITY);
    return m;
}

std::unique_ptr<Model> tiny(Backend& b) {
    ModelOptions o;
    o.max_context = 128;
    o.page_size = 16;
    return std::make_unique<Model>(b, golden_dir() + "/tiny", o);
}

// Prompt logits (all rows) through the model.
std::vector<float> prompt_logits(Model& m, const std::vector<int32_t>& ids) {
    Sequence s;
    m.begin_sequence(s);
    auto out = m.prefill(s, ids, true);
    m.end_sequence(s);
    return out;
}

}  // namespace

TEST(VulkanRecording, OneSubmissionPerStepAndFewerBarriersThanDispatches) {
    auto b = make_vulkan();
    auto m = tiny(*b);
    const auto ids = prompt_ids();
    Sequence s;
    m->begin_sequence(s);
    std::vector<float> logits;
    vk::Recorder& rec = b->recorder();
    const uint64_t submits0 = rec.submits(), dispatches0 = rec.dispatches(), barriers0 = rec.barriers();
    StepItem prefill{&s, std::span<const int32_t>(ids), LogitRows::last};
    m->step(std::span<const StepItem>(&prefill, 1), logits);
    EXPECT_EQ(rec.submits() - submits0, 1u) << "a prefill step (with the sequence reset before it) is one submission";
    const uint64_t dispatches = rec.dispatches() - dispatches0, barriers = rec.barriers() - barriers0;
    EXPECT_GT(dispatches, 40u);
    EXPECT_LT(barriers, dispatches) << "independent dispatches (q/k/v projections) share barrier-free spans";
    for (int i = 0; i < 3; ++i) {
        const uint64_t before = rec.submits();
        const int32_t id = 5 + i;
        StepItem decode{&s, std::span<const int32_t>(&id, 1), LogitRows::last};
        logits.clear();
        m->step(std::span<const StepItem>(&decode, 1), logits);
        EXPECT_EQ(rec.submits() - before, 1u) << "decode step " << i;
    }
    m->end_sequence(s);
}

TEST(VulkanRecording, BarrierPlacementMatchesBarriersEverywhere) {
    const auto ids = prompt_ids();
    std::vector<float> tracked, everywhere;
    {
        auto b = make_vulkan();
        auto m = tiny(*b);
        tracked = prompt_logits(*m, ids);
    }
    {
        ScopedEnv env({{"HALO_VULKAN_BARRIER_ALL", "1"}});
        auto b = make_vulkan();
        auto m = tiny(*b);
        everywhere = prompt_logits(*m, ids);
    }
    EXPECT_LE(max_diff(tracked, everywhere), 1e-6f);
}

TEST(VulkanRecording, GoldenUnderValidationHasNoErrors) {
    BackendOptions o;
    o.validation = true;
    auto b = make_vulkan(o);
    auto m = tiny(*b);
    const auto ids = prompt_ids();
    const auto want = read_npy(golden_dir() + "/tiny/logits.npy").as_floats();
    // Prefill in chunks of 29 (both KDA forms, several MLA pages), then three decode steps.
    Sequence s;
    m->begin_sequence(s);
    std::vector<float> got;
    for (size_t i = 0; i < ids.size(); i += 29) {
        const size_t n = std::min<size_t>(29, ids.size() - i);
        StepItem it{&s, std::span<const int32_t>(ids).subspan(i, n), LogitRows::all};
        m->step(std::span<const StepItem>(&it, 1), got);
    }
    EXPECT_LE(max_diff(got, want), kLogitTol);
    b->synchronize();
    EXPECT_EQ(b->instance().validation_errors(), 0u) << b->instance().first_validation_error();
    m->end_sequence(s);
}

TEST(VulkanRecording, ValidationReportsMissingBarriers) {
    ScopedEnv env({{"HALO_VULKAN_NO_BARRIERS", "1"}});
    BackendOptions o;
    o.validation = true;
    auto b = make_vulkan(o);
    Tensors t(*b);
    auto& x = t.make(DType::f32, {4, 64}, random_values(256, 1), MemoryUse::scratch);
    auto& w = t.make(DType::f32, {64}, random_values(64, 2));
    auto& y = t.make(DType::f32, {4, 64}, {}, MemoryUse::scratch);
    b->begin_step();
    b->rms_norm({x.vk, w.vk, y.vk, 1e-5f});
    b->add({y.vk, x.vk, x.vk});  // reads y right after it was written: a hazard without a barrier
    b->end_step();
    EXPECT_THROW(b->synchronize(), Error) << "synchronisation validation should report the read-after-write hazard";
    EXPECT_GT(b->instance().validation_errors(), 0u);
}

}  // namespace halo::test
