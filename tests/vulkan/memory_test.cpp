// Vulkan memory: every placement, buffers split into pieces (forced small with HALO_VULKAN_MAX_PIECE), host
// transfers across piece boundaries, ordering of writes inside a step, imported host memory (aligned and not),
// the sentence for a tensor that crosses a piece boundary, and the golden model with everything in each placement.
#include <cstring>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/npy.h"
#include "ops/reference/reference.h"
#include "tests/support/plugins.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 131 + seed + (i >> 9));
    return v;
}

std::vector<uint8_t> read_all(Backend& b, const Buffer* buf, uint64_t off, uint64_t n) {
    std::vector<uint8_t> v(n);
    b.read(buf, off, v.data(), n);
    return v;
}

}  // namespace

TEST(VulkanMemory, EveryPlacementIsListedWithCapacity) {
    auto b = make_vulkan();
    const DeviceInfo& d = b->device();
    std::vector<std::string> names;
    for (const auto& p : d.placements) {
        names.push_back(p.name);
        EXPECT_GT(p.capacity_bytes, 0u) << p.name;
    }
    EXPECT_NE(std::find(names.begin(), names.end(), "host-visible"), names.end());
    EXPECT_EQ(std::find(names.begin(), names.end(), "host-import") != names.end(), b->vk_device().caps().host_import);
    for (int u = 0; u < kMemoryUseCount; ++u)
        EXPECT_NE(std::find(names.begin(), names.end(), d.default_placement[u]), names.end()) << "default for use " << u;
}

TEST(VulkanMemory, SplitBuffersRoundTripAcrossPieces) {
    ScopedEnv env({{"HALO_VULKAN_MAX_PIECE", "65536"}});
    auto b = make_vulkan();
    const uint64_t n = 300000;  // five pieces
    for (int32_t pl = 0; pl < int32_t(b->device().placements.size()); ++pl) {
        const std::string name = b->device().placements[size_t(pl)].name;
        Buffer* buf = b->allocate(MemoryUse::weights, pl, n);
        Buffer* other = b->allocate(MemoryUse::scratch, pl, n);
        const auto* vb = static_cast<const vk::VulkanBuffer*>(buf);
        EXPECT_GE(vb->pieces.size(), 5u) << name;
        const auto data = pattern(n, 7);
        b->write(buf, 0, data.data(), n);
        EXPECT_EQ(read_all(*b, buf, 0, n), data) << name;
        // A range across two boundaries, unaligned at both ends.
        EXPECT_EQ(read_all(*b, buf, 65530, 70001), std::vector<uint8_t>(data.begin() + 65530, data.begin() + 65530 + 70001)) << name;
        // zero() with ragged ends across a boundary.
        b->zero(buf, 131069, 9);
        auto want = data;
        std::fill(want.begin() + 131069, want.begin() + 131078, 0);
        EXPECT_EQ(read_all(*b, buf, 0, n), want) << name;
        // copy() between buffers at different boundaries, and within one buffer with overlap (memmove semantics).
        b->zero(other, 0, n);
        b->copy(other, 1000, buf, 60000, 140001);
        auto got = read_all(*b, other, 1000, 140001);
        EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + 60000)) << name;
        b->copy(buf, 100, buf, 0, 200000);
        std::memmove(want.data() + 100, want.data(), 200000);
        EXPECT_EQ(read_all(*b, buf, 0, n), want) << name;
        b->release(buf);
        b->release(other);
    }
}

TEST(VulkanMemory, SplitWeightsBindAnyTensorUpToTheOverlap) {
    // 64 KiB pieces overlapping by 16 KiB: an 8 KiB weight anywhere in the buffer lies whole in some piece, and host
    // writes reach both copies of the overlapping bytes.
    ScopedEnv env({{"HALO_VULKAN_MAX_PIECE", "65536"}});
    auto b = make_vulkan();
    const int64_t rows = 8, cols = 512;
    const uint64_t n = 300000;
    for (int32_t pl = 0; pl < int32_t(b->device().placements.size()); ++pl) {
        if (b->device().placements[size_t(pl)].imports_host) continue;  // imports share pages instead
        Buffer* buf = b->allocate(MemoryUse::weights, pl, n);
        ASSERT_TRUE(static_cast<const vk::VulkanBuffer*>(buf)->duplicated);
        const auto image = pattern(n, 9);
        b->write(buf, 0, image.data(), n);
        Tensors t(*b);
        auto& x = t.make(DType::f32, {3, cols}, random_values(size_t(3 * cols), 21), MemoryUse::scratch);
        auto& y = t.make(DType::f32, {3, rows}, {}, MemoryUse::scratch);
        for (uint64_t at : {uint64_t(40000), uint64_t(45056), uint64_t(60000), uint64_t(98304 - 4096), uint64_t(290000)}) {
            std::vector<float> wv = random_values(size_t(rows * cols), at, 0.1f);
            std::vector<uint16_t> w16(wv.size());
            for (size_t i = 0; i < wv.size(); ++i) w16[i] = f32_to_bf16(wv[i]);
            b->write(buf, at, w16.data(), w16.size() * 2);
            HostBuffer host(MemoryUse::weights, 0, w16.data(), w16.size() * 2);
            b->linear({x.vk, make_tensor(buf, at, DType::bf16, {rows, cols}), y.vk});
            ref::linear({x.ref, make_tensor(&host, 0, DType::bf16, {rows, cols}), y.ref});
            EXPECT_LE(normalised_error(*b, y), 1e-5) << "weight at byte " << at << " in " << b->device().placements[size_t(pl)].name;
            auto back = read_all(*b, buf, at, w16.size() * 2);
            EXPECT_EQ(0, std::memcmp(back.data(), w16.data(), back.size()));
        }
        b->release(buf);
    }
}

TEST(VulkanMemory, WritesInsideAStepAreOrderedWithTheWork) {
    auto b = make_vulkan();
    const uint64_t n = 4096;
    Buffer* a = b->allocate(MemoryUse::scratch, 0, n);
    Buffer* c = b->allocate(MemoryUse::scratch, 0, n);
    const auto first = pattern(n, 1), second = pattern(n, 2);
    b->begin_step();
    b->write(a, 0, first.data(), n);
    b->copy(c, 0, a, 0, n);            // must see `first`
    b->write(a, 0, second.data(), n);  // recorded after the copy
    b->end_step();
    EXPECT_EQ(read_all(*b, c, 0, n), first);
    EXPECT_EQ(read_all(*b, a, 0, n), second);
    b->release(a);
    b->release(c);
}

TEST(VulkanMemory, ImportedHostMemoryIsUsedInPlace) {
    ScopedEnv env({{"HALO_VULKAN_MAX_PIECE", "65536"}});
    auto b = make_vulkan();
    if (!b->vk_device().caps().host_import) {
        ADD_FAILURE() << "this driver has no VK_EXT_external_memory_host; the import path cannot be tested here";
        return;
    }
    const int32_t pl = int32_t(std::find_if(b->device().placements.begin(), b->device().placements.end(),
                                            [](const auto& p) { return p.name == "host-import"; }) -
                               b->device().placements.begin());
    // 300 KB of BF16 weights [600, 256] at an unaligned start (100 bytes into a page), so the import covers it
    // with overlapping 64 KiB windows; each [8, 256] row block must lie inside one window.
    const int64_t rows = 600, cols = 256;
    std::vector<float> wv = random_values(size_t(rows * cols), 11, 0.1f);
    void* mem = std::aligned_alloc(4096, 4096 + size_t(rows * cols) * 2 + 4096);
    uint16_t* w16 = reinterpret_cast<uint16_t*>(static_cast<char*>(mem) + 100);
    for (size_t i = 0; i < wv.size(); ++i) w16[i] = f32_to_bf16(wv[i]);
    Buffer* imp = b->import_host(MemoryUse::weights, pl, w16, uint64_t(rows * cols) * 2);
    ASSERT_NE(imp, nullptr) << "lavapipe imports any host pointer";
    EXPECT_EQ(imp->host, w16);
    EXPECT_GT(static_cast<const vk::VulkanBuffer*>(imp)->pieces.size(), 1u);
    Tensors t(*b);
    auto& x = t.make(DType::f32, {2, cols}, random_values(size_t(2 * cols), 12), MemoryUse::scratch);
    auto& y = t.make(DType::f32, {2, 8}, {}, MemoryUse::scratch);
    HostBuffer host_w(MemoryUse::weights, 0, w16, uint64_t(rows * cols) * 2);
    for (int64_t r0 : {0, 123, 592}) {
        const Tensor wdev = make_tensor(imp, uint64_t(r0 * cols * 2), DType::bf16, {8, cols});
        const Tensor wref = make_tensor(&host_w, uint64_t(r0 * cols * 2), DType::bf16, {8, cols});
        b->linear({x.vk, wdev, y.vk});
        ref::linear({x.ref, wref, y.ref});
        EXPECT_LE(normalised_error(*b, y), 1e-5) << "rows from " << r0;
    }
    b->release(imp);
    std::free(mem);
}

TEST(VulkanMemory, TensorAcrossAPieceBoundaryIsNamedInASentence) {
    ScopedEnv env({{"HALO_VULKAN_MAX_PIECE", "65536"}});
    auto b = make_vulkan();
    const int32_t pl = int32_t(std::find_if(b->device().placements.begin(), b->device().placements.end(),
                                            [](const auto& p) { return p.name == "host-visible"; }) -
                               b->device().placements.begin());
    Buffer* buf = b->allocate(MemoryUse::scratch, pl, 200000);
    Tensors t(*b);
    auto& w = t.make(DType::f32, {512}, random_values(512, 3));
    const Tensor x = make_tensor(buf, 65536 - 1024, DType::f32, {4, 512});  // 8 KiB straddling 64 KiB
    try {
        b->rms_norm({x, w.vk, x, 1e-5f});
        ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("crosses the boundary between two pieces"), std::string::npos) << e.what();
    }
    b->release(buf);
}

}  // namespace halo::test

namespace halo::test {

TEST(VulkanMemory, GoldenLogitsWithEverythingInEachPlacement) {
    auto b = make_vulkan();
    const auto want = read_npy(golden_dir() + "/tiny/logits.npy").as_floats();
    std::ifstream f(golden_dir() + "/tiny/prompt.json");
    const auto ids = nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
    for (const PlacementInfo& p : b->device().placements) {
        ModelOptions o;
        o.max_context = 128;
        o.page_size = 16;
        for (auto& s : o.placement) s = p.name;
        Model m(*b, golden_dir() + "/tiny", o);
        Sequence s;
        m.begin_sequence(s);
        const auto got = m.prefill(s, ids, true);
        ASSERT_EQ(got.size(), want.size());
        float d = 0;
        for (size_t i = 0; i < got.size(); ++i) d = std::max(d, std::fabs(got[i] - want[i]));
        EXPECT_LE(d, 1e-4f) << "weights, state, cache and scratch in " << p.name;
    }
}

}  // namespace halo::test
