// Tests that need a real GPU (any Vulkan device that is not a CPU implementation). On a machine with only lavapipe
// each reports itself skipped with the reason; ctest label "realgpu" selects them (ctest -L realgpu).
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/npy.h"
#include "tests/support/plugins.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

// Index of the first non-CPU Vulkan device, or -1 (with the devices seen in `seen`).
int32_t gpu_index(std::string& seen) {
    vk::Instance instance(false);
    for (const auto& d : instance.devices()) {
        seen += (seen.empty() ? "" : "; ") + d.describe();
        if (d.kind != "cpu" && d.compute_family != UINT32_MAX) return d.index;
    }
    return -1;
}

#define REQUIRE_GPU(index)                                                              \
    std::string seen_;                                                                  \
    const int32_t index = gpu_index(seen_);                                             \
    if (index < 0) GTEST_SKIP() << "needs a real GPU; this machine has only: " << seen_

std::vector<float> prompt_logits(Backend& b, const std::string placements[kMemoryUseCount]) {
    ModelOptions o;
    o.max_context = 128;
    o.page_size = 16;
    for (int u = 0; u < kMemoryUseCount; ++u) o.placement[u] = placements[u];
    Model m(b, golden_dir() + "/tiny", o);
    std::ifstream f(golden_dir() + "/tiny/prompt.json");
    const auto ids = nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
    Sequence s;
    m.begin_sequence(s);
    return m.prefill(s, ids, true);
}

}  // namespace

TEST(RealGpu, BestDeviceIsTheGpu) {
    REQUIRE_GPU(index);
    auto b = make_vulkan();
    EXPECT_NE(b->device().kind, "cpu") << "with a GPU present the plugin must not pick a CPU implementation";
}

TEST(RealGpu, GoldenLogitsInEveryPlacement) {
    REQUIRE_GPU(index);
    BackendOptions o;
    o.device_index = index;
    auto b = make_vulkan(o);
    const auto want = read_npy(golden_dir() + "/tiny/logits.npy").as_floats();
    for (const PlacementInfo& p : b->device().placements) {
        std::string placements[kMemoryUseCount];
        for (auto& s : placements) s = p.name;
        const auto got = prompt_logits(*b, placements);
        ASSERT_EQ(got.size(), want.size());
        float m = 0;
        for (size_t i = 0; i < got.size(); ++i) m = std::max(m, std::fabs(got[i] - want[i]));
        EXPECT_LE(m, 1e-4f) << "everything in " << p.name;
    }
}

TEST(RealGpu, MemoryBudgetIsReported) {
    REQUIRE_GPU(index);
    BackendOptions o;
    o.device_index = index;
    auto b = make_vulkan(o);
    if (!b->vk_device().caps().memory_budget) GTEST_SKIP() << "this driver has no VK_EXT_memory_budget";
    for (const PlacementInfo& p : b->device().placements) EXPECT_GT(p.budget_bytes, 0u) << p.name;
}

TEST(RealGpu, BufferLargerThanOneAllocationIsSplit) {
    REQUIRE_GPU(index);
    BackendOptions o;
    o.device_index = index;
    auto b = make_vulkan(o);
    const uint64_t piece = b->vk_device().caps().max_piece, bytes = piece + (uint64_t(64) << 20);
    const PlacementInfo& hv = *std::find_if(b->device().placements.begin(), b->device().placements.end(),
                                            [](const auto& p) { return p.name == "host-visible"; });
    if (hv.capacity_bytes < 2 * bytes) GTEST_SKIP() << "host-visible heap too small for a " << bytes << "-byte buffer";
    const int32_t pl = int32_t(&hv - b->device().placements.data());
    Buffer* buf = b->allocate(MemoryUse::cache, pl, bytes);
    EXPECT_GE(static_cast<const vk::VulkanBuffer*>(buf)->pieces.size(), 2u);
    std::vector<uint8_t> data(1 << 20);
    for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 3);
    b->write(buf, piece - data.size() / 2, data.data(), data.size());  // across the boundary
    std::vector<uint8_t> back(data.size());
    b->read(buf, piece - data.size() / 2, back.data(), back.size());
    EXPECT_EQ(back, data);
    b->release(buf);
}

}  // namespace halo::test
