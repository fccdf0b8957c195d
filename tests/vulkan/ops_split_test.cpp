// Glue ops on the Vulkan plugin with tensors larger than one shader binding or one allocation, forced small with
// the HALO_VULKAN_MAX_RANGE / HALO_VULKAN_MAX_PIECE overrides so lavapipe exercises the splitting paths that the
// real model's 755 MB embedding and lm_head take on a real driver. Tolerances as in the op conformance suite:
// 1e-6 for copies (embedding), 1e-4 normalised for F32 dot products of length <= 2304.
#include "ops/reference/reference.h"
#include "tests/vulkan/vk_test_support.h"

namespace halo::test {

using namespace halo::ops;

namespace {

struct GlueCase {
    int64_t rows, width, vocab;
    DType dt;
};

void run_glue(vk::VulkanBackend& b, const GlueCase& c) {
    Tensors t(b);
    auto& table = t.make(c.dt, {c.vocab, c.width}, random_values(size_t(c.vocab * c.width), 1));
    std::vector<int32_t> id_list;
    for (int64_t r = 0; r < c.rows; ++r) id_list.push_back(int32_t((r * 7919 + 3) % c.vocab));
    auto& ids = t.ids(id_list);
    auto& x = t.make(DType::f32, {c.rows, c.width}, {}, MemoryUse::scratch);
    EmbeddingParams e{table.vk, ids.vk, x.vk}, er{table.ref, ids.ref, x.ref};
    b.embedding(e);
    ref::embedding(er);
    EXPECT_LE(normalised_error(b, x), 1e-6) << "embedding " << dtype_name(c.dt);

    auto& w = t.make(c.dt, {c.width}, random_values(size_t(c.width), 2, 0.2f));
    auto& a = t.make(DType::f32, {c.rows, c.width}, {}, MemoryUse::scratch);
    RmsNormParams n{x.vk, w.vk, a.vk, 1e-5f}, nr{x.ref, w.ref, a.ref, 1e-5f};
    b.rms_norm(n);
    ref::rms_norm(nr);
    EXPECT_LE(normalised_error(b, a), 1e-5) << "rms_norm";

    auto& head = t.make(c.dt, {c.vocab, c.width}, random_values(size_t(c.vocab * c.width), 3, 0.1f));
    auto& logits = t.make(DType::f32, {c.rows, c.vocab}, {}, MemoryUse::scratch);
    LinearParams l{a.vk, head.vk, logits.vk}, lr{a.ref, head.ref, logits.ref};
    b.linear(l);
    ref::linear(lr);
    EXPECT_LE(normalised_error(b, logits), 1e-4) << "linear rows " << c.rows;

    AddParams ad{x.vk, a.vk, x.vk}, adr{x.ref, a.ref, x.ref};
    b.add(ad);
    ref::add(adr);
    EXPECT_LE(normalised_error(b, x), 1e-6) << "add";

    const int64_t inter = 48;
    auto& g = t.make(c.dt, {inter, c.width}, random_values(size_t(inter * c.width), 4, 0.1f));
    auto& u = t.make(c.dt, {inter, c.width}, random_values(size_t(inter * c.width), 5, 0.1f));
    auto& d = t.make(c.dt, {c.width, inter}, random_values(size_t(inter * c.width), 6, 0.1f));
    auto& y = t.make(DType::f32, {c.rows, c.width}, {}, MemoryUse::scratch);
    MlpParams m{x.vk, g.vk, u.vk, d.vk, y.vk}, mr{x.ref, g.ref, u.ref, d.ref, y.ref};
    b.mlp(m);
    ref::mlp(mr);
    EXPECT_LE(normalised_error(b, y), 1e-4) << "mlp";
}

}  // namespace

TEST(VulkanGlue, OpsMatchReference) {
    auto b = make_vulkan();
    for (DType dt : {DType::bf16, DType::f16, DType::f32})
        for (int64_t rows : {1, 3, 70})
            for (int64_t width : {64, 33}) run_glue(*b, {rows, width, 97, dt});
}

TEST(VulkanGlue, TablesLargerThanOneBindingAreSplitByRows) {
    // 16 KiB of binding range: a [600, 64] BF16 table (75 KiB) needs several row windows.
    ScopedEnv env({{"HALO_VULKAN_MAX_RANGE", "16384"}});
    auto b = make_vulkan();
    for (DType dt : {DType::bf16, DType::f32})
        for (int64_t rows : {2, 5}) run_glue(*b, {rows, 64, 600, dt});  // logits [5, 600] F32 still fit 16 KiB
}

}  // namespace halo::test
