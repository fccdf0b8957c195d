// Both Vulkan MLA attention kernels (one head per workgroup; 32 heads per workgroup sharing each cache read, the
// decode kernel of the real model's 32 heads) against the reference, forced with HALO_VULKAN_MLA_KERNEL, with head
// counts that fill one group exactly, leave one partly empty, and need two groups. Tolerance as the conformance
// suite: 1e-4 normalised with an F32 cache, 1e-2 with BF16 (one rounding step of the cached latents).

#include "ops/reference/reference.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

size_t pieces_seen = 0;  // pieces of the last case's cache buffer

void run_mla(vk::VulkanBackend& b, int64_t H, DType cache_dt, const std::vector<int>& run_tokens, int history) {
    const int64_t dn = 16, dr = 8, dv = 16, r = 32, hidden = 48, dq = dn + dr, dkv = dn + dv, width = r + dr;
    const int32_t ps = 16;
    // Pages handed out from the top, so tables are not the identity.
    const PagedRuns pr(run_tokens, history, ps, PagedRuns::PageOrder::from_top);
    const int64_t rows = pr.rows, pages = pr.pages;
    Tensors t(b);
    const float ws = 1.0f / std::sqrt(float(hidden));
    auto& q = t.make(DType::bf16, {H * dq, hidden}, random_values(size_t(H * dq * hidden), 1, ws));
    auto& kva = t.make(DType::bf16, {width, hidden}, random_values(size_t(width * hidden), 2, ws));
    auto& norm = t.make(DType::bf16, {r}, random_values(size_t(r), 3, 0.1f));
    auto& kvb = t.make(DType::bf16, {H * dkv, r}, random_values(size_t(H * dkv * r), 4, 0.2f));
    auto& o = t.make(DType::bf16, {hidden, H * dv}, random_values(size_t(hidden * H * dv), 5, 0.05f));
    auto& x = t.make(DType::f32, {rows, hidden}, random_values(size_t(rows * hidden), 6), MemoryUse::scratch);
    auto& out = t.make(DType::f32, {rows, hidden}, {}, MemoryUse::scratch);
    auto& cache = t.make(cache_dt, {pages, ps, width}, random_values(size_t(pages * ps * width), 7), MemoryUse::cache);
    const MlaPairs pairs{q, kva, norm, kvb, o, x, out, cache};
    const MlaDims dims{H, dn, dr, dv, r};
    b.mla(mla_params(pairs, dims, ps, false), pr.batch());
    ref::mla(mla_params(pairs, dims, ps, true), pr.batch());
    const double tol = cache_dt == DType::bf16 ? 1e-2 : 1e-4;
    EXPECT_LE(normalised_error(b, out), tol) << "H " << H << " cache " << dtype_name(cache_dt);
    EXPECT_LE(normalised_error(b, cache), tol) << "H " << H << " cache " << dtype_name(cache_dt);
    pieces_seen = static_cast<const vk::VulkanBuffer*>(cache.dev)->pieces.size();
}

}  // namespace

TEST(VulkanMlaKernels, BothKernelsMatchTheReference) {
    for (const char* kernel : {"heads", "per_head"}) {
        ScopedEnv env({{"HALO_VULKAN_MLA_KERNEL", kernel}});
        auto b = make_vulkan();
        for (int64_t H : {32, 20, 35}) run_mla(*b, H, DType::f32, {1, 33}, 70);
        run_mla(*b, 32, DType::bf16, {1, 5}, 300);  // several splits of a long context
    }
}

TEST(VulkanMlaKernels, CacheLargerThanOneBindingSpansSeveralPieces) {
    // 128 KiB bindings: a 320 KB F32 cache (126 pages of 16 tokens) lives in three power-of-two pieces, and pages
    // cross their boundaries.
    for (const char* kernel : {"heads", "per_head"}) {
        ScopedEnv env({{"HALO_VULKAN_MLA_KERNEL", kernel}, {"HALO_VULKAN_MAX_RANGE", "131072"}});
        auto b = make_vulkan();
        run_mla(*b, 32, DType::f32, {1, 2}, 1000);
        EXPECT_GE(pieces_seen, 3u) << kernel;
    }
}

}  // namespace halo::test
